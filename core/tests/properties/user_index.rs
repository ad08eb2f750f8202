//! The per-user index of sessions: its codec on arbitrary and damaged
//! bytes, and its operations against a plain model.

use paranoid_core::record::{Hash, UID_LEN};
use paranoid_core::user_index::{
    Entry, IndexError, UserIndex, ENTRY_LEN, MAX_INDEX_LEN, MAX_USER_SESSIONS,
};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::alloc::measure;
use crate::config;

/// The most a decode may allocate: the entries, at most 64 of them.
const DECODE_HEAP: usize = MAX_USER_SESSIONS * std::mem::size_of::<Entry>();

/// Uids from a small set (so that logins of one session repeat), more than
/// an index holds (so that it fills up).
fn uid() -> impl Strategy<Value = [u8; UID_LEN]> {
    (0u8..80).prop_map(|n| [n; UID_LEN])
}

/// Times from a small range (so that ties are common) or anywhere.
fn time() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 1000u64..1020,
        1 => any::<u64>(),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<Hash>(), uid(), time()).prop_map(|(key_hash, uid, created_ms)| Entry {
        key_hash,
        uid,
        created_ms,
    })
}

/// Any valid index: entries sorted by time, one per uid, at most 64.
fn index() -> impl Strategy<Value = UserIndex> {
    vec(entry(), 0..=MAX_USER_SESSIONS + 8).prop_map(|mut entries| {
        entries.sort_by_key(|e| e.created_ms);
        let mut seen = std::collections::HashSet::new();
        entries.retain(|e| seen.insert(e.uid));
        entries.truncate(MAX_USER_SESSIONS);
        UserIndex::from_entries(entries).unwrap()
    })
}

/// Decodes under the allocation counter: no panic, nothing big allocated,
/// and whatever decodes is canonical and follows the index's rules.
fn check_decode(bytes: &[u8]) -> Result<Option<UserIndex>, TestCaseError> {
    let (result, usage) = measure(|| UserIndex::decode(bytes));
    prop_assert!(
        usage.total <= DECODE_HEAP,
        "decode of {} bytes allocated {:?}",
        bytes.len(),
        usage
    );
    match result {
        Ok(index) => {
            prop_assert_eq!(&index.encode()[..], bytes);
            check_rules(&index)?;
            Ok(Some(index))
        }
        Err(_) => Ok(None),
    }
}

fn check_rules(index: &UserIndex) -> Result<(), TestCaseError> {
    let entries = index.entries();
    prop_assert!(entries.len() <= MAX_USER_SESSIONS);
    prop_assert!(entries
        .windows(2)
        .all(|w| w[0].created_ms <= w[1].created_ms));
    let mut uids: Vec<_> = entries.iter().map(|e| e.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    prop_assert_eq!(uids.len(), entries.len());
    prop_assert_eq!(UserIndex::decode(&index.encode()), Ok(index.clone()));
    prop_assert!(index.encode().len() <= MAX_INDEX_LEN);
    Ok(())
}

/// What happens to a user's sessions.
#[derive(Debug, Clone)]
enum Op {
    Login(Entry, Option<u32>),
    Logout([u8; UID_LEN]),
    Cycle([u8; UID_LEN], Hash),
    Prune(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (entry(), proptest::option::of(0u32..70)).prop_map(|(e, cap)| Op::Login(e, cap)),
        2 => uid().prop_map(Op::Logout),
        2 => (uid(), any::<Hash>()).prop_map(|(uid, key)| Op::Cycle(uid, key)),
        1 => (time(), prop_oneof![0u64..30, any::<u64>()]).prop_map(|(now, t)| Op::Prune(now, t)),
    ]
}

/// The index as a plain list of (entry, sequence number), read in order
/// of (created_ms, sequence): written without the index's code.
#[derive(Default)]
struct Model {
    entries: Vec<(Entry, u64)>,
    next: u64,
}

impl Model {
    fn sorted(&self) -> Vec<Entry> {
        let mut all = self.entries.clone();
        all.sort_by_key(|(e, seq)| (e.created_ms, *seq));
        all.into_iter().map(|(e, _)| e).collect()
    }

    fn login(&mut self, entry: Entry, cap: Option<u32>) -> Vec<Entry> {
        let cap = cap.map_or(MAX_USER_SESSIONS, |c| {
            (c as usize).clamp(1, MAX_USER_SESSIONS)
        });
        self.entries.retain(|(e, _)| e.uid != entry.uid);
        let others = self.sorted();
        // The newest cap - 1 others stay.
        let gone = others.len().saturating_sub(cap - 1);
        let pushed = others[..gone].to_vec();
        self.entries
            .retain(|(e, _)| !pushed.iter().any(|p| p.uid == e.uid));
        self.entries.push((entry, self.next));
        self.next += 1;
        pushed
    }

    fn logout(&mut self, uid: &[u8; UID_LEN]) -> Option<Entry> {
        let at = self.entries.iter().position(|(e, _)| e.uid == *uid)?;
        Some(self.entries.remove(at).0)
    }

    fn cycle(&mut self, uid: &[u8; UID_LEN], key: Hash) -> bool {
        self.entries
            .iter_mut()
            .find(|(e, _)| e.uid == *uid)
            .map(|(e, _)| e.key_hash = key)
            .is_some()
    }

    fn prune(&mut self, now: u64, timeout: u64) -> Vec<Entry> {
        let ended: Vec<Entry> = self
            .sorted()
            .into_iter()
            .filter(|e| now.saturating_sub(e.created_ms) >= timeout)
            .collect();
        self.entries
            .retain(|(e, _)| !ended.iter().any(|x| x.uid == e.uid));
        ended
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..400)) {
        check_decode(&bytes)?;
    }

    /// Entries from a few values (so that repeated uids and times out of
    /// order are common) behind a valid header, with a count that may or
    /// may not match them, and maybe garbage after: the count, the length
    /// and the rules each decide.
    #[test]
    fn arbitrary_bodies(
        count in prop_oneof![0u8..=64, any::<u8>()],
        entries in vec((0u8..3, 0u8..4, 0u64..4), 0..=MAX_USER_SESSIONS + 2),
        matching in any::<bool>(),
        garbage in vec(any::<u8>(), 0..3),
    ) {
        let count = if matching { u8::try_from(entries.len()).unwrap() } else { count };
        let mut bytes = vec![1, 3, count];
        for (key, uid, created) in &entries {
            bytes.extend_from_slice(&[*key; 32]);
            bytes.extend_from_slice(&[*uid; UID_LEN]);
            bytes.extend_from_slice(&created.to_be_bytes());
        }
        bytes.extend_from_slice(&garbage);
        check_decode(&bytes)?;
        let n = usize::from(count);
        let body = entries.len() * ENTRY_LEN + garbage.len();
        let result = UserIndex::decode(&bytes);
        if n > MAX_USER_SESSIONS {
            prop_assert_eq!(result, Err(IndexError::TooManyEntries(n)));
        } else if body < n * ENTRY_LEN {
            prop_assert_eq!(result, Err(IndexError::Truncated));
        } else if body > n * ENTRY_LEN {
            prop_assert_eq!(result, Err(IndexError::TrailingBytes));
        } else {
            // The first entry that is older than the one before it or
            // repeats an earlier uid, if any.
            let broken = (0..entries.len()).find_map(|i| {
                let (_, uid, created) = entries[i];
                if i > 0 && entries[i - 1].2 > created {
                    Some(IndexError::Unordered(i))
                } else if entries[..i].iter().any(|e| e.1 == uid) {
                    Some(IndexError::DuplicateUid(i))
                } else {
                    None
                }
            });
            match broken {
                Some(error) => prop_assert_eq!(result, Err(error)),
                None => prop_assert!(result.is_ok()),
            }
        }
    }

    #[test]
    fn round_trip(index in index()) {
        let bytes = index.encode();
        prop_assert_eq!(bytes.len(), index.encoded_len());
        prop_assert_eq!(bytes.len(), 3 + index.len() * ENTRY_LEN);
        prop_assert_eq!(check_decode(&bytes)?, Some(index));
    }

    /// One to three changed bytes: refused, or another valid index.
    #[test]
    fn damaged_indexes(index in index(), changes in vec((any::<usize>(), 1u8..=255), 1..4)) {
        let original = index.encode();
        let mut bytes = original.clone();
        for (at, x) in changes {
            let len = bytes.len();
            bytes[at % len] ^= x;
        }
        let decoded = check_decode(&bytes)?;
        if bytes != original {
            prop_assert_ne!(decoded, Some(index));
        }
    }

    /// A login of a new session and its logout leave the index as it was.
    #[test]
    fn add_then_remove(index in index(), entry in entry()) {
        prop_assume!(index.find(&entry.uid).is_none() && index.len() < MAX_USER_SESSIONS);
        let mut changed = index.clone();
        prop_assert_eq!(changed.add(entry.clone(), None), vec![]);
        prop_assert_eq!(changed.len(), index.len() + 1);
        prop_assert_eq!(changed.remove_uid(&entry.uid), Some(entry));
        prop_assert_eq!(changed, index);
    }

    /// With N sessions and a cap of N, a login of another session ends
    /// exactly the oldest one.
    #[test]
    fn a_login_beyond_the_cap_ends_the_oldest(index in index(), entry in entry()) {
        prop_assume!(!index.is_empty() && index.find(&entry.uid).is_none());
        let cap = index.len() as u32;
        let oldest = index.entries()[0].clone();
        let mut changed = index.clone();
        prop_assert_eq!(changed.add(entry.clone(), Some(cap)), vec![oldest.clone()]);
        prop_assert_eq!(changed.len(), index.len());
        prop_assert!(changed.find(&oldest.uid).is_none());
        prop_assert_eq!(changed.find(&entry.uid), Some(&entry));
        // Without a cap, the same happens at 64 only.
        let mut uncapped = index.clone();
        let pushed = uncapped.add(entry, None);
        prop_assert_eq!(pushed.len(), usize::from(index.len() == MAX_USER_SESSIONS));
    }

    /// After a prune at `now`, every session left is younger than the
    /// timeout, and every one dropped was not.
    #[test]
    fn prune_keeps_exactly_the_live_sessions(index in index(), now in time(), timeout in prop_oneof![0u64..30, any::<u64>()]) {
        let mut pruned = index.clone();
        let dropped = pruned.prune(now, timeout);
        prop_assert!(pruned.entries().iter().all(|e| now.saturating_sub(e.created_ms) < timeout));
        prop_assert!(dropped.iter().all(|e| now.saturating_sub(e.created_ms) >= timeout));
        prop_assert_eq!(dropped.len() + pruned.len(), index.len());
        check_rules(&pruned)?;
    }
}

proptest! {
    // Long sequences: fewer cases.
    #![proptest_config(config(256))]

    /// Any sequence of logins, logouts, token cycles and prunes does what
    /// the model does, and the index always follows its rules (never more
    /// than 64, never more than the cap after a login).
    #[test]
    fn operations_follow_the_model(ops in vec(op(), 0..150)) {
        let mut index = UserIndex::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Login(entry, cap) => {
                    let pushed = index.add(entry.clone(), cap);
                    prop_assert_eq!(&pushed, &model.login(entry.clone(), cap));
                    let limit = cap.map_or(MAX_USER_SESSIONS, |c| (c as usize).clamp(1, MAX_USER_SESSIONS));
                    prop_assert!(index.len() <= limit);
                    prop_assert_eq!(index.find(&entry.uid), Some(&entry));
                    prop_assert!(pushed.iter().all(|p| p.uid != entry.uid && index.find(&p.uid).is_none()));
                }
                Op::Logout(uid) => {
                    prop_assert_eq!(index.remove_uid(&uid), model.logout(&uid));
                    prop_assert!(index.find(&uid).is_none());
                }
                Op::Cycle(uid, key) => {
                    prop_assert_eq!(index.replace_key(&uid, key), model.cycle(&uid, key));
                }
                Op::Prune(now, timeout) => {
                    prop_assert_eq!(index.prune(now, timeout), model.prune(now, timeout));
                }
            }
            prop_assert_eq!(index.entries(), &model.sorted()[..]);
            check_rules(&index)?;
        }
    }
}
