//! The index of one application user's sessions, stored in memcached under
//! [`secret::user_key`](crate::secret::user_key) (`prefix + "u:" +
//! hex(hash(user))`), so that `logout-everywhere` can find every session of
//! a user and `paranoid_user_max_sessions` can end the oldest.
//!
//! An entry names a session by the hash its record is stored under (the
//! token hash, which changes when the token cycles or rotates: see
//! [`UserIndex::replace_key`]), its uid (which never changes) and its
//! creation time (which bounds its life: see [`UserIndex::prune`]).
//!
//! Entries are kept oldest first, ordered by `created_ms` (sessions created
//! at the same millisecond in the order they were added), with at most one
//! entry per uid and at most [`MAX_USER_SESSIONS`] entries: every operation
//! keeps these rules, and the decoder refuses bytes that break them.
//!
//! # Layout (version 1)
//!
//! All integers are unsigned, big-endian. Times are unix milliseconds.
//!
//! ```text
//! offset  size  field
//! 0       1     version             = 1
//! 1       1     kind                = 3 (user index; a session record's
//!                                   kind is 1 and a pointer's 2, so no
//!                                   decoder mistakes one for the other)
//! 2       1     n = number of entries, 0..=64
//! 3       n*56  entries, oldest first: key hash (32), uid (16),
//!               created_ms (8); created_ms never decreases, no uid
//!               appears twice
//! ```
//!
//! An index is 3 to 3587 bytes long. Everything is fixed width, so the
//! encoding is canonical: for every `x` that [`UserIndex::decode`] accepts,
//! `decode(x)?.encode() == x`.

use std::fmt;

use thiserror::Error;

use crate::record::{Hash, HASH_LEN, UID_LEN};

/// Most sessions one user has at a time: a login beyond it ends the
/// oldest, whatever `paranoid_user_max_sessions` says.
pub const MAX_USER_SESSIONS: usize = 64;

const VERSION: u8 = 1;
const KIND_USER_INDEX: u8 = 3;
const HEADER_LEN: usize = 3;
/// Bytes of one encoded entry: key hash, uid, created_ms.
pub const ENTRY_LEN: usize = HASH_LEN + UID_LEN + 8;
/// Length of the largest index.
pub const MAX_INDEX_LEN: usize = HEADER_LEN + MAX_USER_SESSIONS * ENTRY_LEN;

/// One session of the user.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The hash the session record is stored under (its current token's).
    pub key_hash: Hash,
    pub uid: [u8; UID_LEN],
    /// The session's creation time (its `created_ms`).
    pub created_ms: u64,
}

/// Only the first bytes of the key hash and uid, as in the logs: the full
/// key hash finds the session's record.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |bytes: &[u8]| crate::secret::hex(bytes.get(..4).unwrap_or(bytes));
        f.debug_struct("Entry")
            .field("key_hash", &format_args!("{}..", short(&self.key_hash)))
            .field("uid", &format_args!("{}..", short(&self.uid)))
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

/// The sessions of one user, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserIndex {
    entries: Vec<Entry>,
}

/// Why bytes (or a list of entries) are not a user index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IndexError {
    #[error("empty user index")]
    Empty,
    #[error("unknown user index version {0}")]
    UnknownVersion(u8),
    #[error("not a user index (kind {0})")]
    UnknownKind(u8),
    #[error("truncated user index")]
    Truncated,
    #[error("trailing bytes after the user index")]
    TrailingBytes,
    #[error("{0} sessions in a user index, at most 64 are allowed")]
    TooManyEntries(usize),
    #[error("user index entry {0} is older than the one before it")]
    Unordered(usize),
    #[error("user index entry {0} repeats the uid of an earlier one")]
    DuplicateUid(usize),
}

impl UserIndex {
    /// An index without sessions.
    pub fn new() -> UserIndex {
        UserIndex::default()
    }

    /// An index of `entries`, which must follow the index's rules (at most
    /// [`MAX_USER_SESSIONS`], oldest first, distinct uids).
    pub fn from_entries(entries: Vec<Entry>) -> Result<UserIndex, IndexError> {
        check(&entries)?;
        Ok(UserIndex { entries })
    }

    /// The sessions, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of the session `uid`.
    pub fn find(&self, uid: &[u8; UID_LEN]) -> Option<&Entry> {
        self.entries.iter().find(|e| e.uid == *uid)
    }

    /// When the newest session must have ended: the time after which the
    /// whole index is useless (a TTL for its record). `None` when empty.
    pub fn expires_at_ms(&self, absolute_timeout_ms: u64) -> Option<u64> {
        self.entries
            .last()
            .map(|e| e.created_ms.saturating_add(absolute_timeout_ms))
    }

    /// Drops the entries whose session must have ended by `now_ms`: those
    /// at least `absolute_timeout_ms` old (as the engine decides absolute
    /// expiry). Returns them, oldest first. A session that ended earlier
    /// (idle, logout) keeps its entry until then or until removed.
    pub fn prune(&mut self, now_ms: u64, absolute_timeout_ms: u64) -> Vec<Entry> {
        let ended = |e: &Entry| now_ms.saturating_sub(e.created_ms) >= absolute_timeout_ms;
        // Oldest first: the ended ones are a prefix.
        let n = self.entries.iter().take_while(|e| ended(e)).count();
        self.entries.drain(..n).collect()
    }

    /// Adds the session of `entry` (a login) and returns the sessions
    /// pushed out, oldest first, which the caller must end: so many of the
    /// oldest *other* sessions that at most `cap` remain, or
    /// [`MAX_USER_SESSIONS`] when `cap` is `None`. The cap is taken within
    /// `1..=MAX_USER_SESSIONS`; the added session itself is never pushed
    /// out, even when it is older than the others.
    ///
    /// An entry with the same uid (a second login of one session) is
    /// replaced, not counted twice and not returned.
    pub fn add(&mut self, entry: Entry, cap: Option<u32>) -> Vec<Entry> {
        let cap = cap.map_or(MAX_USER_SESSIONS, |c| {
            usize::try_from(c)
                .unwrap_or(MAX_USER_SESSIONS)
                .clamp(1, MAX_USER_SESSIONS)
        });
        self.entries.retain(|e| e.uid != entry.uid);
        let excess = (self.entries.len() + 1).saturating_sub(cap);
        let pushed: Vec<Entry> = self.entries.drain(..excess).collect();
        let at = self
            .entries
            .partition_point(|e| e.created_ms <= entry.created_ms);
        self.entries.insert(at, entry);
        pushed
    }

    /// Removes the session `uid` (a logout); returns its entry.
    pub fn remove_uid(&mut self, uid: &[u8; UID_LEN]) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.uid == *uid)?;
        Some(self.entries.remove(at))
    }

    /// Records that the session `uid` now lives under `new_key_hash` (its
    /// token cycled or rotated). False when the index does not know it.
    pub fn replace_key(&mut self, uid: &[u8; UID_LEN], new_key_hash: Hash) -> bool {
        match self.entries.iter_mut().find(|e| e.uid == *uid) {
            Some(entry) => {
                entry.key_hash = new_key_hash;
                true
            }
            None => false,
        }
    }

    /// Length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.entries.len() * ENTRY_LEN
    }

    /// The canonical encoding, in an allocation of exactly its length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(VERSION);
        out.push(KIND_USER_INDEX);
        // At most MAX_USER_SESSIONS (64), so the count fits a byte.
        out.push(u8::try_from(self.entries.len()).unwrap_or(u8::MAX));
        for entry in &self.entries {
            out.extend_from_slice(&entry.key_hash);
            out.extend_from_slice(&entry.uid);
            out.extend_from_slice(&entry.created_ms.to_be_bytes());
        }
        out
    }

    /// Decodes exactly one canonical index: anything else is an error. The
    /// count is checked against [`MAX_USER_SESSIONS`] and the bytes present
    /// before anything is allocated.
    pub fn decode(bytes: &[u8]) -> Result<UserIndex, IndexError> {
        let (&version, rest) = bytes.split_first().ok_or(IndexError::Empty)?;
        if version != VERSION {
            return Err(IndexError::UnknownVersion(version));
        }
        let (&kind, rest) = rest.split_first().ok_or(IndexError::Truncated)?;
        if kind != KIND_USER_INDEX {
            return Err(IndexError::UnknownKind(kind));
        }
        let (&count, rest) = rest.split_first().ok_or(IndexError::Truncated)?;
        let count = usize::from(count);
        if count > MAX_USER_SESSIONS {
            return Err(IndexError::TooManyEntries(count));
        }
        let body_len = count * ENTRY_LEN;
        if rest.len() < body_len {
            return Err(IndexError::Truncated);
        }
        if rest.len() > body_len {
            return Err(IndexError::TrailingBytes);
        }
        let mut entries = Vec::with_capacity(count);
        for chunk in rest.chunks_exact(ENTRY_LEN) {
            entries.push(decode_entry(chunk).ok_or(IndexError::Truncated)?);
        }
        check(&entries)?;
        Ok(UserIndex { entries })
    }
}

fn decode_entry(chunk: &[u8]) -> Option<Entry> {
    let (key_hash, rest) = chunk.split_first_chunk::<HASH_LEN>()?;
    let (uid, rest) = rest.split_first_chunk::<UID_LEN>()?;
    let created_ms = u64::from_be_bytes(*rest.first_chunk::<8>()?);
    Some(Entry {
        key_hash: *key_hash,
        uid: *uid,
        created_ms,
    })
}

/// The index's rules: at most MAX_USER_SESSIONS, oldest first, distinct
/// uids. Errors name the first entry (0-based) that breaks one.
fn check(entries: &[Entry]) -> Result<(), IndexError> {
    if entries.len() > MAX_USER_SESSIONS {
        return Err(IndexError::TooManyEntries(entries.len()));
    }
    for (i, entry) in entries.iter().enumerate() {
        let before = entries.get(..i).unwrap_or(&[]);
        if before
            .last()
            .is_some_and(|b| b.created_ms > entry.created_ms)
        {
            return Err(IndexError::Unordered(i));
        }
        if before.iter().any(|b| b.uid == entry.uid) {
            return Err(IndexError::DuplicateUid(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
