//! The session record codec: `Record::decode` of arbitrary and of damaged
//! bytes, and round trips of generated sessions and pointers.

use paranoid_core::control::{is_user_byte, UserId, UserIdError, MAX_USER_LEN};
use paranoid_core::record::{
    DecodeError, Hash, Nonce, Pointer, Record, Session, MAX_PREVIOUS_NONCES, UID_LEN,
};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::alloc::measure;
use crate::config;

/// Byte offset of the previous-nonce count in a session without optional
/// fields: version, kind, flags, uid, created_ms, key_issued_ms.
const COUNT_AT: usize = 3 + UID_LEN + 16;

/// The largest allocation a decode may make: the list of previous nonces,
/// at most MAX_PREVIOUS_NONCES of them. A decoder that sized an allocation
/// from a count it had not checked (up to 255 here) would go over it.
const DECODE_HEAP: usize = MAX_PREVIOUS_NONCES * std::mem::size_of::<Nonce>();

/// All a decode may allocate: the nonces and a user id of at most
/// MAX_USER_LEN bytes.
const DECODE_TOTAL: usize = DECODE_HEAP + MAX_USER_LEN;

/// Longest session: every optional field, the longest user, 16 nonces.
const MAX_SESSION_LEN: usize = 909;

fn nonce() -> impl Strategy<Value = Nonce> {
    (any::<Hash>(), any::<u64>()).prop_map(|(hash, at_ms)| Nonce { hash, at_ms })
}

/// A valid user id of any length and any allowed bytes.
fn user() -> impl Strategy<Value = UserId> {
    let allowed: Vec<u8> = (0..=u8::MAX).filter(|&b| is_user_byte(b)).collect();
    vec(proptest::sample::select(allowed), 1..=MAX_USER_LEN)
        .prop_map(|id| UserId::parse(&id).unwrap())
}

fn session(max_previous: usize) -> impl Strategy<Value = Session> {
    (
        any::<[u8; UID_LEN]>(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(any::<Hash>()),
        proptest::option::of(any::<Hash>()),
        proptest::option::of(nonce()),
        vec(nonce(), 0..=max_previous),
        proptest::option::of(user()),
    )
        .prop_map(
            |(uid, created_ms, key_issued_ms, fingerprint, secure_key, nonce, previous, user)| {
                Session {
                    uid,
                    created_ms,
                    key_issued_ms,
                    fingerprint,
                    secure_key,
                    nonce,
                    previous,
                    user,
                }
            },
        )
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        4 => session(MAX_PREVIOUS_NONCES).prop_map(Record::Session),
        1 => (any::<Hash>(), any::<u64>())
            .prop_map(|(target, created_ms)| Record::Pointer(Pointer { target, created_ms })),
    ]
}

/// One change to a valid encoding.
#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Append(Vec<u8>),
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Set { at, byte }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        vec(any::<u8>(), 1..50).prop_map(Damage::Append),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert { at, byte }),
        any::<usize>().prop_map(|at| Damage::Remove { at }),
    ]
}

/// Applies one damage; positions wrap around the current length (an
/// earlier damage may have emptied the bytes).
fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    let len = bytes.len();
    match *damage {
        Damage::Insert { at, byte } => bytes.insert(at % (len + 1), byte),
        Damage::Append(ref more) => bytes.extend_from_slice(more),
        _ if len == 0 => {}
        Damage::Flip { at, bit } => bytes[at % len] ^= 1 << bit,
        Damage::Set { at, byte } => bytes[at % len] = byte,
        Damage::Truncate { at } => bytes.truncate(at % len),
        Damage::Remove { at } => {
            bytes.remove(at % len);
        }
    }
}

/// Decodes under the allocation counter: no panic, nothing big allocated,
/// and whatever decodes is the one canonical encoding of its value.
fn check_decode(bytes: &[u8]) -> Result<Option<Record>, TestCaseError> {
    let (result, usage) = measure(|| Record::decode(bytes));
    prop_assert!(
        usage.largest <= DECODE_HEAP && usage.total <= DECODE_TOTAL,
        "decode of {} bytes allocated {:?}",
        bytes.len(),
        usage
    );
    match result {
        Ok(record) => {
            prop_assert_eq!(&record.encode()[..], bytes);
            prop_assert_eq!(record.encoded_len(), bytes.len());
            Ok(Some(record))
        }
        Err(_) => Ok(None),
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..1000)) {
        check_decode(&bytes)?;
    }

    /// Arbitrary bodies behind a valid version and kind, so that the
    /// decoder gets past its first two bytes.
    #[test]
    fn arbitrary_bodies(
        kind in 0u8..4,
        flags in prop_oneof![0u8..16, any::<u8>()],
        body in vec(any::<u8>(), 0..950),
    ) {
        let mut bytes = vec![1, kind, flags];
        bytes.extend_from_slice(&body);
        check_decode(&bytes)?;
    }

    #[test]
    fn round_trip(record in record()) {
        let bytes = record.encode();
        prop_assert_eq!(bytes.len(), record.encoded_len());
        prop_assert!((36..=MAX_SESSION_LEN).contains(&bytes.len()));
        prop_assert_eq!(check_decode(&bytes)?, Some(record));
    }

    /// Sessions with more previous nonces than a record holds keep the
    /// newest MAX_PREVIOUS_NONCES.
    #[test]
    fn extra_previous_nonces_are_dropped(s in session(MAX_PREVIOUS_NONCES + 8)) {
        let bytes = s.encode();
        prop_assert_eq!(&bytes, &Record::Session(s.clone()).encode());
        let mut kept = s.clone();
        kept.previous.truncate(MAX_PREVIOUS_NONCES);
        prop_assert_eq!(check_decode(&bytes)?, Some(Record::Session(kept)));
    }

    /// A valid record with one to three changes: rejected, or (when the
    /// change happens to make another valid record) canonical.
    #[test]
    fn damaged_records(record in record(), damages in vec(damage(), 1..4)) {
        let original = record.encode();
        let mut bytes = original.clone();
        for d in &damages {
            apply(&mut bytes, d);
        }
        let decoded = check_decode(&bytes)?;
        if bytes != original {
            prop_assert_ne!(decoded, Some(record));
        }
    }

    /// A flags byte with any unknown bit set is refused, whatever the
    /// rest of the record; other flag changes never give a non-canonical
    /// record.
    #[test]
    fn flag_bytes(s in session(MAX_PREVIOUS_NONCES), flags in any::<u8>()) {
        let mut bytes = s.encode();
        bytes[2] = flags;
        let decoded = Record::decode(&bytes);
        if flags & !0x0f != 0 {
            prop_assert_eq!(decoded, Err(DecodeError::UnknownFlags(flags)));
        } else {
            check_decode(&bytes)?;
        }
    }

    /// Every previous-nonce count above the limit is refused before any
    /// nonce is read, whatever follows.
    #[test]
    fn counts_above_the_limit(count in MAX_PREVIOUS_NONCES as u8 + 1..=u8::MAX, tail in vec(any::<u8>(), 0..700)) {
        let mut bytes = Session {
            uid: [1; UID_LEN],
            created_ms: 2,
            key_issued_ms: 3,
            fingerprint: None,
            secure_key: None,
            nonce: None,
            previous: Vec::new(),
            user: None,
        }
        .encode();
        prop_assert_eq!(bytes.len(), COUNT_AT + 1);
        bytes[COUNT_AT] = count;
        bytes.extend_from_slice(&tail);
        let (result, usage) = measure(|| Record::decode(&bytes));
        prop_assert_eq!(result, Err(DecodeError::TooManyNonces(usize::from(count))));
        prop_assert_eq!(usage.total, 0);
    }

    /// A user field with any length byte and any bytes: a length of 0 or
    /// above MAX_USER_LEN is refused before anything is read or allocated;
    /// otherwise the id is checked byte by byte, and a valid one is read
    /// in one allocation of exactly its length.
    #[test]
    fn user_fields(len in any::<u8>(), id in vec(prop_oneof![3 => Just(b'a'), 1 => any::<u8>()], 0..300)) {
        let mut bytes = Session {
            uid: [1; UID_LEN],
            created_ms: 2,
            key_issued_ms: 3,
            fingerprint: None,
            secure_key: None,
            nonce: None,
            previous: Vec::new(),
            user: None,
        }
        .encode();
        bytes[2] = 0x08;
        bytes.insert(COUNT_AT, len);
        let n = usize::from(len);
        for (i, b) in id.iter().enumerate() {
            bytes.insert(COUNT_AT + 1 + i, *b);
        }
        let (result, usage) = measure(|| Record::decode(&bytes));
        if n == 0 || n > MAX_USER_LEN {
            let expected = if n == 0 { UserIdError::Empty } else { UserIdError::TooLong { len: n } };
            prop_assert_eq!(result, Err(DecodeError::InvalidUser(expected)));
            prop_assert_eq!(usage.total, 0);
        } else if id.len() >= n {
            let given = &id[..n];
            match UserId::parse(given) {
                Ok(user) => {
                    if id.len() == n {
                        prop_assert!(matches!(result, Ok(Record::Session(ref s)) if s.user.as_ref() == Some(&user)));
                        prop_assert_eq!(usage.total, n);
                    }
                    check_decode(&bytes)?;
                }
                Err(e) => prop_assert_eq!(result, Err(DecodeError::InvalidUser(e))),
            }
        } else {
            // Not enough bytes for the id and the count after it.
            prop_assert!(result.is_err());
        }
    }
}

/// The largest count a record can claim, with all the bytes it would need
/// actually present: refused without allocating.
#[test]
fn largest_claimed_count_does_not_allocate() {
    let mut bytes = Session {
        uid: [0; UID_LEN],
        created_ms: 0,
        key_issued_ms: 0,
        fingerprint: None,
        secure_key: None,
        nonce: None,
        previous: Vec::new(),
        user: None,
    }
    .encode();
    bytes[COUNT_AT] = u8::MAX;
    bytes.resize(COUNT_AT + 1 + 255 * 40, 0);
    let (result, usage) = measure(|| Record::decode(&bytes));
    assert_eq!(result, Err(DecodeError::TooManyNonces(255)));
    assert_eq!(usage.total, 0, "{usage:?}");
    // The limit itself is accepted, in one allocation of 16 nonces.
    bytes[COUNT_AT] = MAX_PREVIOUS_NONCES as u8;
    bytes.truncate(COUNT_AT + 1 + MAX_PREVIOUS_NONCES * 40);
    let (result, usage) = measure(|| Record::decode(&bytes));
    assert!(matches!(result, Ok(Record::Session(ref s)) if s.previous.len() == 16));
    assert_eq!(usage.largest, DECODE_HEAP, "{usage:?}");
}
