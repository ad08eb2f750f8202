//! The session record stored in memcached: a compact, versioned binary
//! format with its own strict decoder.
//!
//! Everything in a record is fixed width, so every record has exactly one
//! encoding and the decoder accepts nothing else: for every `x` that
//! [`Record::decode`] accepts, `decode(x)?.encode() == x`. A value that does
//! not decode is treated by the caller as absent and replaced.
//!
//! # Layout (version 1)
//!
//! All integers are unsigned, big-endian. Times are unix milliseconds.
//!
//! ```text
//! offset  size  field
//! 0       1     version             = 1
//! 1       1     kind                = 1 (session) or 2 (pointer)
//!
//! session (kind 1):
//! 2       1     flags               bit0 fingerprint, bit1 secure key,
//!                                   bit2 nonce, bit3 user;
//!                                   bits 4..7 must be zero
//! 3       16    uid
//! 19      8     created_ms
//! 27      8     key_issued_ms
//!         32    fingerprint         only if bit0
//!         32    secure_key          only if bit1
//!         32+8  nonce hash, at_ms   only if bit2
//!         1+u   u = user id length  only if bit3; u is 1..=128 and the
//!               (1..=128), user id  id is printable ASCII without space,
//!                                   comma or semicolon (`control::UserId`)
//!         1     n = number of previous nonces, 0..=16
//!         n*40  previous nonces, newest first: hash (32), at_ms (8)
//!
//! pointer (kind 2), exactly 42 bytes:
//! 2       32    target (hash of the new token)
//! 34      8     created_ms
//! ```
//!
//! The optional fields follow the fixed ones in the order of their flag
//! bits. A session is 36 to 909 bytes long (780 without a user).
//!
//! The user (bit 3, the application's `login user=ID`) was added without a
//! new version: a record without a user is byte for byte what it was
//! before. A decoder from before it refuses a record with bit 3 set as
//! [`DecodeError::UnknownFlags`], and its caller treats such a record as
//! absent: after a downgrade, sessions bound to a user are lost (their
//! clients get new sessions), those without a user are kept.
//!
//! [`Record::encode`] writes at most [`MAX_PREVIOUS_NONCES`] previous
//! nonces: if a [`Session`] holds more, only the first (newest) 16 are
//! written and the rest are dropped, so such a session does not survive a
//! round trip unchanged.

use crate::control::{UserId, UserIdError, MAX_USER_LEN};

/// Length of every hash stored in a record (SHA-256).
pub const HASH_LEN: usize = 32;
/// A hash as stored in a record.
pub type Hash = [u8; HASH_LEN];
/// Length of a session uid.
pub const UID_LEN: usize = 16;
/// Most previous nonces a record holds.
pub const MAX_PREVIOUS_NONCES: usize = 16;

/// The only version this module writes and reads.
const VERSION: u8 = 1;
const KIND_SESSION: u8 = 1;
const KIND_POINTER: u8 = 2;
const FLAG_FINGERPRINT: u8 = 1 << 0;
const FLAG_SECURE_KEY: u8 = 1 << 1;
const FLAG_NONCE: u8 = 1 << 2;
const FLAG_USER: u8 = 1 << 3;
const KNOWN_FLAGS: u8 = FLAG_FINGERPRINT | FLAG_SECURE_KEY | FLAG_NONCE | FLAG_USER;
const TIME_LEN: usize = 8;
const NONCE_LEN: usize = HASH_LEN + TIME_LEN;
/// version, kind, flags, uid, created_ms, key_issued_ms, count.
const SESSION_FIXED_LEN: usize = 3 + UID_LEN + 2 * TIME_LEN + 1;
/// version, kind, target, created_ms.
const POINTER_LEN: usize = 2 + HASH_LEN + TIME_LEN;

/// A nonce hash with a time: for the current nonce, when it was issued;
/// for a previous one, when it was superseded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce {
    pub hash: Hash,
    pub at_ms: u64,
}

/// The state of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub uid: [u8; UID_LEN],
    /// Unix ms, start of the session (absolute timeout).
    pub created_ms: u64,
    /// When the current token was issued (key cycling).
    pub key_issued_ms: u64,
    pub fingerprint: Option<Hash>,
    pub secure_key: Option<Hash>,
    pub nonce: Option<Nonce>,
    /// Newest first, at most [`MAX_PREVIOUS_NONCES`] (more are not encoded).
    pub previous: Vec<Nonce>,
    /// The application's user, bound by `login user=ID`.
    pub user: Option<UserId>,
}

/// Left under an old token after cycling: points to the hash of the new
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub target: Hash,
    pub created_ms: u64,
}

/// What a memcached value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Session(Session),
    Pointer(Pointer),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty record")]
    Empty,
    /// A version this module does not know.
    #[error("unknown record version {0}")]
    UnknownVersion(u8),
    /// A kind other than session or pointer.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// Session flags with bits other than the four known ones.
    #[error("unknown session flags {0:#04x}")]
    UnknownFlags(u8),
    /// The bytes end before the record does.
    #[error("truncated record")]
    Truncated,
    /// Bytes follow a complete record.
    #[error("trailing bytes after the record")]
    TrailingBytes,
    /// A previous-nonce count above [`MAX_PREVIOUS_NONCES`].
    #[error("{0} previous nonces, at most {MAX_PREVIOUS_NONCES} are allowed")]
    TooManyNonces(usize),
    /// A user id length of 0 or above [`MAX_USER_LEN`], or a byte a user
    /// id cannot have.
    #[error("invalid session user: {0}")]
    InvalidUser(#[source] UserIdError),
}

impl Session {
    /// The previous nonces that are encoded: the first 16.
    fn encoded_previous(&self) -> &[Nonce] {
        self.previous
            .get(..MAX_PREVIOUS_NONCES)
            .unwrap_or(&self.previous)
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.fingerprint.is_some() {
            flags |= FLAG_FINGERPRINT;
        }
        if self.secure_key.is_some() {
            flags |= FLAG_SECURE_KEY;
        }
        if self.nonce.is_some() {
            flags |= FLAG_NONCE;
        }
        if self.user.is_some() {
            flags |= FLAG_USER;
        }
        flags
    }

    fn encoded_len(&self) -> usize {
        SESSION_FIXED_LEN
            + self.fingerprint.map_or(0, |_| HASH_LEN)
            + self.secure_key.map_or(0, |_| HASH_LEN)
            + self.nonce.as_ref().map_or(0, |_| NONCE_LEN)
            + self.user.as_ref().map_or(0, |user| 1 + user.len())
            + self.encoded_previous().len() * NONCE_LEN
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let previous = self.encoded_previous();
        out.push(KIND_SESSION);
        out.push(self.flags());
        out.extend_from_slice(&self.uid);
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.extend_from_slice(&self.key_issued_ms.to_be_bytes());
        if let Some(fingerprint) = &self.fingerprint {
            out.extend_from_slice(fingerprint);
        }
        if let Some(secure_key) = &self.secure_key {
            out.extend_from_slice(secure_key);
        }
        if let Some(nonce) = &self.nonce {
            nonce.encode_into(out);
        }
        if let Some(user) = &self.user {
            // At most MAX_USER_LEN (128) bytes, so the length fits a byte.
            out.push(u8::try_from(user.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(user.as_bytes());
        }
        // At most MAX_PREVIOUS_NONCES (16), so the count fits a byte.
        out.push(u8::try_from(previous.len()).unwrap_or(u8::MAX));
        for nonce in previous {
            nonce.encode_into(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Session, DecodeError> {
        let flags = r.byte()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let uid = r.array::<UID_LEN>()?;
        let created_ms = r.u64()?;
        let key_issued_ms = r.u64()?;
        let fingerprint = r.optional(flags & FLAG_FINGERPRINT != 0, Reader::array)?;
        let secure_key = r.optional(flags & FLAG_SECURE_KEY != 0, Reader::array)?;
        let nonce = r.optional(flags & FLAG_NONCE != 0, Nonce::decode)?;
        let user = r.optional(flags & FLAG_USER != 0, decode_user)?;
        let count = usize::from(r.byte()?);
        if count > MAX_PREVIOUS_NONCES {
            return Err(DecodeError::TooManyNonces(count));
        }
        let mut previous = Vec::with_capacity(count);
        for _ in 0..count {
            previous.push(Nonce::decode(r)?);
        }
        Ok(Session {
            uid,
            created_ms,
            key_issued_ms,
            fingerprint,
            secure_key,
            nonce,
            previous,
            user,
        })
    }
}

/// A length byte and that many bytes of user id; the length is checked
/// before anything is read or allocated.
fn decode_user(r: &mut Reader<'_>) -> Result<UserId, DecodeError> {
    let len = usize::from(r.byte()?);
    if len == 0 {
        return Err(DecodeError::InvalidUser(UserIdError::Empty));
    }
    if len > MAX_USER_LEN {
        return Err(DecodeError::InvalidUser(UserIdError::TooLong { len }));
    }
    UserId::parse(r.bytes(len)?).map_err(DecodeError::InvalidUser)
}

impl Nonce {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.at_ms.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Nonce, DecodeError> {
        Ok(Nonce {
            hash: r.array()?,
            at_ms: r.u64()?,
        })
    }
}

impl Pointer {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(KIND_POINTER);
        out.extend_from_slice(&self.target);
        out.extend_from_slice(&self.created_ms.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Pointer, DecodeError> {
        Ok(Pointer {
            target: r.array()?,
            created_ms: r.u64()?,
        })
    }
}

impl Session {
    /// The canonical encoding of `Record::Session(self)`, without moving or
    /// copying the session into a `Record` first.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.encoded_len());
        out.push(VERSION);
        self.encode_into(&mut out);
        out
    }
}

impl Record {
    /// Length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        match self {
            Record::Session(session) => session.encoded_len(),
            Record::Pointer(_) => POINTER_LEN,
        }
    }

    /// The canonical encoding, in an allocation of exactly its length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(VERSION);
        match self {
            Record::Session(session) => session.encode_into(out),
            Record::Pointer(pointer) => pointer.encode_into(out),
        }
    }

    /// Decodes exactly one canonical record: anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader { rest: bytes };
        let version = r.byte().map_err(|_| DecodeError::Empty)?;
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let record = match r.byte()? {
            KIND_SESSION => Record::Session(Session::decode(&mut r)?),
            KIND_POINTER => Record::Pointer(Pointer::decode(&mut r)?),
            kind => return Err(DecodeError::UnknownKind(kind)),
        };
        if !r.rest.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(record)
    }
}

/// Consumes bytes from the front of a slice; running out is `Truncated`.
struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(first)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .rest
            .split_at_checked(N)
            .ok_or(DecodeError::Truncated)?;
        let array = <[u8; N]>::try_from(head).map_err(|_| DecodeError::Truncated)?;
        self.rest = rest;
        Ok(array)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    fn optional<T>(
        &mut self,
        present: bool,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if present {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests;
