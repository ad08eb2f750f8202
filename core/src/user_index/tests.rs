use super::*;

const T: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn entry(n: u8, created_ms: u64) -> Entry {
    Entry {
        key_hash: [n; HASH_LEN],
        uid: [n; UID_LEN],
        created_ms,
    }
}

/// `n` entries, uids 1..=n, one second apart, oldest first.
fn index(n: usize) -> UserIndex {
    let entries = (1..=n)
        .map(|i| entry(i as u8, T + i as u64 * 1000))
        .collect();
    UserIndex::from_entries(entries).unwrap()
}

fn uids(index: &UserIndex) -> Vec<u8> {
    index.entries().iter().map(|e| e.uid[0]).collect()
}

fn uids_of(entries: &[Entry]) -> Vec<u8> {
    entries.iter().map(|e| e.uid[0]).collect()
}

/// decode(x).encode() == x, or x is rejected.
fn assert_canonical(bytes: &[u8]) {
    if let Ok(index) = UserIndex::decode(bytes) {
        assert_eq!(index.encode(), bytes, "non-canonical bytes accepted");
    }
}

// --- codec -----------------------------------------------------------

#[test]
fn empty_index() {
    let index = UserIndex::new();
    assert!(index.is_empty());
    assert_eq!(index.encode(), [1, 3, 0]);
    assert_eq!(UserIndex::decode(&[1, 3, 0]), Ok(UserIndex::new()));
    assert_eq!(index.expires_at_ms(HOUR), None);
}

#[test]
fn exact_layout() {
    let index = UserIndex::from_entries(vec![
        Entry {
            key_hash: [0xaa; HASH_LEN],
            uid: [0x11; UID_LEN],
            created_ms: 0x0102_0304_0506_0708,
        },
        Entry {
            key_hash: [0xbb; HASH_LEN],
            uid: [0x22; UID_LEN],
            created_ms: 0x0102_0304_0506_0709,
        },
    ])
    .unwrap();
    let mut expected = vec![1, 3, 2];
    expected.extend_from_slice(&[0xaa; HASH_LEN]);
    expected.extend_from_slice(&[0x11; UID_LEN]);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    expected.extend_from_slice(&[0xbb; HASH_LEN]);
    expected.extend_from_slice(&[0x22; UID_LEN]);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 9]);
    assert_eq!(index.encode(), expected);
    assert_eq!(UserIndex::decode(&expected), Ok(index));
}

#[test]
fn round_trips_and_sizes() {
    for n in [0, 1, 2, 63, MAX_USER_SESSIONS] {
        let index = index(n);
        let bytes = index.encode();
        assert_eq!(bytes.len(), 3 + n * 56);
        assert_eq!(bytes.len(), index.encoded_len());
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(UserIndex::decode(&bytes), Ok(index));
    }
    assert_eq!(index(MAX_USER_SESSIONS).encode().len(), MAX_INDEX_LEN);
    assert_eq!(MAX_INDEX_LEN, 3587);
    // Extreme times, equal times.
    let index = UserIndex::from_entries(vec![
        entry(1, 0),
        entry(2, 0),
        entry(3, u64::MAX),
        entry(4, u64::MAX),
    ])
    .unwrap();
    assert_eq!(UserIndex::decode(&index.encode()), Ok(index));
}

#[test]
fn decode_errors() {
    assert_eq!(UserIndex::decode(&[]), Err(IndexError::Empty));
    for v in [0u8, 2, 0xff] {
        assert_eq!(
            UserIndex::decode(&[v, 3, 0]),
            Err(IndexError::UnknownVersion(v))
        );
    }
    assert_eq!(UserIndex::decode(&[1]), Err(IndexError::Truncated));
    assert_eq!(UserIndex::decode(&[1, 3]), Err(IndexError::Truncated));
    for k in [0u8, 1, 2, 4, 0xff] {
        assert_eq!(
            UserIndex::decode(&[1, k, 0]),
            Err(IndexError::UnknownKind(k))
        );
    }
    for count in [65u8, 66, 0xff] {
        let mut bytes = vec![1, 3, count];
        bytes.resize(3 + usize::from(count) * ENTRY_LEN, 0);
        assert_eq!(
            UserIndex::decode(&bytes),
            Err(IndexError::TooManyEntries(usize::from(count)))
        );
    }
    for n in [0, 1, 5] {
        let mut bytes = index(n).encode();
        bytes.push(0);
        assert_eq!(UserIndex::decode(&bytes), Err(IndexError::TrailingBytes));
    }
}

#[test]
fn session_records_are_not_indexes() {
    use crate::record::{Pointer, Record, Session};
    let session = Session {
        uid: [1; UID_LEN],
        created_ms: T,
        key_issued_ms: T,
        fingerprint: None,
        secure_key: None,
        nonce: None,
        previous: Vec::new(),
        user: None,
    };
    assert_eq!(
        UserIndex::decode(&session.encode()),
        Err(IndexError::UnknownKind(1))
    );
    let pointer = Record::Pointer(Pointer {
        target: [2; HASH_LEN],
        created_ms: T,
    });
    assert_eq!(
        UserIndex::decode(&pointer.encode()),
        Err(IndexError::UnknownKind(2))
    );
    assert!(Record::decode(&index(3).encode()).is_err());
    assert!(Record::decode(&UserIndex::new().encode()).is_err());
}

#[test]
fn every_truncation_is_rejected() {
    for n in [0, 1, 3] {
        let bytes = index(n).encode();
        assert_eq!(UserIndex::decode(&bytes[..0]), Err(IndexError::Empty));
        for len in 1..bytes.len() {
            assert_eq!(
                UserIndex::decode(&bytes[..len]),
                Err(IndexError::Truncated),
                "length {len}"
            );
        }
    }
}

#[test]
fn rules_are_checked() {
    let out_of_order = vec![entry(1, T), entry(2, T + 2), entry(3, T + 1)];
    assert_eq!(
        UserIndex::from_entries(out_of_order.clone()),
        Err(IndexError::Unordered(2))
    );
    let duplicate = vec![entry(1, T), entry(2, T), entry(1, T + 1)];
    assert_eq!(
        UserIndex::from_entries(duplicate.clone()),
        Err(IndexError::DuplicateUid(2))
    );
    let too_many: Vec<Entry> = (0..=MAX_USER_SESSIONS).map(|i| entry(i as u8, T)).collect();
    assert_eq!(
        UserIndex::from_entries(too_many),
        Err(IndexError::TooManyEntries(65))
    );
    // The same bytes, written by hand, are refused by the decoder.
    for (entries, error) in [
        (out_of_order, IndexError::Unordered(2)),
        (duplicate, IndexError::DuplicateUid(2)),
    ] {
        let mut bytes = vec![1, 3, entries.len() as u8];
        for e in &entries {
            bytes.extend_from_slice(&e.key_hash);
            bytes.extend_from_slice(&e.uid);
            bytes.extend_from_slice(&e.created_ms.to_be_bytes());
        }
        assert_eq!(UserIndex::decode(&bytes), Err(error));
    }
    // Equal times and equal key hashes are fine.
    let mut same_key = entry(2, T);
    same_key.key_hash = [1; HASH_LEN];
    assert!(UserIndex::from_entries(vec![entry(1, T), same_key]).is_ok());
}

#[test]
fn every_single_byte_change_is_rejected_or_canonical() {
    for n in [0, 1, 3] {
        let bytes = index(n).encode();
        for pos in 0..bytes.len() {
            for x in 1..=255u8 {
                let mut changed = bytes.clone();
                changed[pos] ^= x;
                assert_canonical(&changed);
            }
        }
    }
}

#[test]
fn errors_read_well() {
    let cases = [
        (IndexError::Empty, "empty user index"),
        (
            IndexError::UnknownVersion(2),
            "unknown user index version 2",
        ),
        (IndexError::UnknownKind(1), "not a user index (kind 1)"),
        (IndexError::Truncated, "truncated user index"),
        (
            IndexError::TrailingBytes,
            "trailing bytes after the user index",
        ),
        (
            IndexError::TooManyEntries(65),
            "65 sessions in a user index, at most 64 are allowed",
        ),
        (
            IndexError::Unordered(2),
            "user index entry 2 is older than the one before it",
        ),
        (
            IndexError::DuplicateUid(1),
            "user index entry 1 repeats the uid of an earlier one",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn entry_debug_shows_only_prefixes() {
    let text = format!("{:?}", entry(0xab, 5));
    assert_eq!(
        text,
        "Entry { key_hash: abababab.., uid: abababab.., created_ms: 5 }"
    );
}

// --- prune -------------------------------------------------------------

#[test]
fn prune_drops_exactly_the_sessions_past_the_absolute_timeout() {
    let mut index = index(3); // created T+1000, T+2000, T+3000
    assert_eq!(index.prune(T + 1000 + HOUR - 1, HOUR), vec![]);
    assert_eq!(uids(&index), [1, 2, 3]);
    // The engine ends a session at age >= absolute timeout.
    let dropped = index.prune(T + 2000 + HOUR, HOUR);
    assert_eq!(uids_of(&dropped), [1, 2]);
    assert_eq!(uids(&index), [3]);
    assert_eq!(uids_of(&index.prune(u64::MAX, HOUR)), [3]);
    assert!(index.is_empty());
}

#[test]
fn prune_edge_cases() {
    // A clock behind the entries' (another host's): nothing ended.
    let mut index = index(3);
    assert_eq!(index.prune(0, HOUR), vec![]);
    assert_eq!(index.prune(T, HOUR), vec![], "created after now: age 0");
    // A zero timeout ends everything, as in the engine (age >= timeout).
    assert_eq!(uids_of(&index.prune(T, 0)), [1, 2, 3]);
    // Huge timeouts never overflow.
    let mut index = UserIndex::from_entries(vec![entry(1, u64::MAX)]).unwrap();
    assert_eq!(index.prune(u64::MAX, u64::MAX), vec![]);
    assert_eq!(index.prune(u64::MAX, 0).len(), 1);
    assert_eq!(UserIndex::new().prune(T, HOUR), vec![]);
}

#[test]
fn expires_when_the_newest_session_must_have_ended() {
    let index = index(3);
    assert_eq!(index.expires_at_ms(HOUR), Some(T + 3000 + HOUR));
    let late = UserIndex::from_entries(vec![entry(1, u64::MAX - 1)]).unwrap();
    assert_eq!(late.expires_at_ms(HOUR), Some(u64::MAX));
}

// --- add -----------------------------------------------------------------

#[test]
fn add_keeps_the_oldest_first() {
    let mut index = UserIndex::new();
    assert_eq!(index.add(entry(1, T + 10), None), vec![]);
    assert_eq!(index.add(entry(2, T + 30), None), vec![]);
    assert_eq!(index.add(entry(3, T + 20), None), vec![]);
    assert_eq!(index.add(entry(4, T), None), vec![]);
    // Same time as an existing entry: after it.
    assert_eq!(index.add(entry(5, T + 20), None), vec![]);
    assert_eq!(uids(&index), [4, 1, 3, 5, 2]);
    assert_eq!(UserIndex::decode(&index.encode()), Ok(index));
}

#[test]
fn a_second_login_of_a_session_replaces_its_entry() {
    let mut index = index(3);
    let mut again = entry(2, T + 5000);
    again.key_hash = [0xee; HASH_LEN];
    assert_eq!(
        index.add(again.clone(), Some(3)),
        vec![],
        "not counted twice"
    );
    assert_eq!(uids(&index), [1, 3, 2]);
    assert_eq!(index.find(&[2; UID_LEN]), Some(&again));
    assert_eq!(index.len(), 3);
}

#[test]
fn a_login_beyond_the_cap_ends_the_oldest() {
    let mut index = index(3);
    let pushed = index.add(entry(4, T + 4000), Some(3));
    assert_eq!(uids_of(&pushed), [1]);
    assert_eq!(pushed, vec![entry(1, T + 1000)]);
    assert_eq!(uids(&index), [2, 3, 4]);
    // Cap 1: only the newest login stays.
    let pushed = index.add(entry(5, T + 5000), Some(1));
    assert_eq!(uids_of(&pushed), [2, 3, 4]);
    assert_eq!(uids(&index), [5]);
}

#[test]
fn a_lowered_cap_pushes_out_every_extra_session_oldest_first() {
    let mut index = index(6);
    let pushed = index.add(entry(7, T + 7000), Some(2));
    assert_eq!(uids_of(&pushed), [1, 2, 3, 4, 5]);
    assert_eq!(uids(&index), [6, 7]);
}

#[test]
fn the_added_session_is_never_pushed_out() {
    // A session created long ago logs in: the others are newer, but they
    // go, not the one that just logged in.
    let mut full = index(2);
    let pushed = full.add(entry(9, T - HOUR), Some(1));
    assert_eq!(uids_of(&pushed), [1, 2]);
    assert_eq!(uids(&full), [9]);
    let mut full = index(2);
    let pushed = full.add(entry(9, T - HOUR), Some(2));
    assert_eq!(uids_of(&pushed), [1]);
    assert_eq!(uids(&full), [9, 2]);
}

#[test]
fn without_a_cap_the_index_holds_64() {
    let mut index = index(MAX_USER_SESSIONS - 1);
    assert_eq!(index.add(entry(100, T + 100_000), None), vec![]);
    assert_eq!(index.len(), MAX_USER_SESSIONS);
    let pushed = index.add(entry(101, T + 100_001), None);
    assert_eq!(uids_of(&pushed), [1]);
    assert_eq!(index.len(), MAX_USER_SESSIONS);
    // Caps above 64 are 64, a cap of 0 is 1.
    let pushed = index.add(entry(102, T + 100_002), Some(1000));
    assert_eq!(uids_of(&pushed), [2]);
    assert_eq!(index.len(), MAX_USER_SESSIONS);
    let pushed = index.add(entry(103, T + 100_003), Some(u32::MAX));
    assert_eq!(pushed.len(), 1);
    let pushed = index.add(entry(104, T + 100_004), Some(0));
    assert_eq!(pushed.len(), MAX_USER_SESSIONS);
    assert_eq!(uids(&index), [104]);
}

// --- remove, replace -----------------------------------------------------

#[test]
fn remove_uid() {
    let mut index = index(3);
    assert_eq!(index.remove_uid(&[2; UID_LEN]), Some(entry(2, T + 2000)));
    assert_eq!(uids(&index), [1, 3]);
    assert_eq!(index.remove_uid(&[2; UID_LEN]), None);
    assert_eq!(index.remove_uid(&[9; UID_LEN]), None);
    assert_eq!(uids(&index), [1, 3]);
    assert_eq!(index.find(&[2; UID_LEN]), None);
}

#[test]
fn replace_key_follows_a_cycled_token() {
    let mut index = index(3);
    assert!(index.replace_key(&[2; UID_LEN], [0xcc; HASH_LEN]));
    let moved = index.find(&[2; UID_LEN]).unwrap();
    assert_eq!(moved.key_hash, [0xcc; HASH_LEN]);
    assert_eq!(moved.created_ms, T + 2000, "the session's age is kept");
    assert_eq!(uids(&index), [1, 2, 3], "and so is its place");
    assert!(!index.replace_key(&[9; UID_LEN], [0xdd; HASH_LEN]));
    assert_eq!(UserIndex::decode(&index.encode()), Ok(index));
}
