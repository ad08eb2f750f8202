use super::*;

fn user(id: &str) -> UserId {
    UserId::parse(id.as_bytes()).unwrap()
}

/// The longest user id, with the first and last allowed bytes in it.
fn longest_user() -> UserId {
    let mut id = vec![b'u'; MAX_USER_LEN];
    id[0] = 0x21;
    id[MAX_USER_LEN - 1] = 0x7e;
    UserId::parse(&id).unwrap()
}

fn hash(seed: u8) -> Hash {
    let mut h = [0u8; HASH_LEN];
    for (i, b) in h.iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
    h
}

fn nonce(seed: u8) -> Nonce {
    Nonce {
        hash: hash(seed),
        at_ms: 1_700_000_000_000 + u64::from(seed),
    }
}

fn session(fingerprint: bool, secure_key: bool, with_nonce: bool, previous: usize) -> Session {
    Session {
        uid: [0xa5; UID_LEN],
        created_ms: 1_700_000_000_000,
        key_issued_ms: 1_700_000_123_456,
        fingerprint: fingerprint.then(|| hash(1)),
        secure_key: secure_key.then(|| hash(2)),
        nonce: with_nonce.then(|| nonce(3)),
        previous: (0..previous).map(|i| nonce(100 + i as u8)).collect(),
        user: None,
    }
}

/// A session with the optional fields of the flag bits in `bits`
/// (bit 3: a user).
fn session_bits(bits: u8, previous: usize) -> Session {
    Session {
        user: (bits & 8 != 0).then(|| user("alice@example.com")),
        ..session(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, previous)
    }
}

/// Every field present and as long as it gets.
fn full_session() -> Record {
    Record::Session(Session {
        user: Some(longest_user()),
        ..session(true, true, true, MAX_PREVIOUS_NONCES)
    })
}

fn pointer() -> Record {
    Record::Pointer(Pointer {
        target: hash(9),
        created_ms: u64::MAX - 1,
    })
}

/// encode(decode(x)) == x, or x is rejected.
fn assert_canonical(bytes: &[u8]) {
    if let Ok(record) = Record::decode(bytes) {
        assert_eq!(
            record.encode(),
            bytes,
            "non-canonical bytes accepted: {record:?}"
        );
    }
}

#[test]
fn round_trips_every_combination() {
    for bits in 0u8..16 {
        for previous in [0, 1, 2, MAX_PREVIOUS_NONCES] {
            let s = session_bits(bits, previous);
            let record = Record::Session(s);
            let bytes = record.encode();
            assert_eq!(bytes.len(), record.encoded_len());
            assert_eq!(bytes.capacity(), bytes.len());
            assert_eq!(bytes[2], bits, "flags byte");
            assert_eq!(Record::decode(&bytes), Ok(record));
        }
    }
    let record = pointer();
    let bytes = record.encode();
    assert_eq!(bytes.len(), 42);
    assert_eq!(bytes.capacity(), 42);
    assert_eq!(Record::decode(&bytes), Ok(record));
}

#[test]
fn extreme_values_round_trip() {
    for (t, user) in [
        (0, Some(user("!"))),
        (1, None),
        (u64::MAX, Some(longest_user())),
    ] {
        let record = Record::Session(Session {
            uid: [0xff; UID_LEN],
            created_ms: t,
            key_issued_ms: t,
            fingerprint: Some([0; HASH_LEN]),
            secure_key: Some([0xff; HASH_LEN]),
            nonce: Some(Nonce {
                hash: [0; HASH_LEN],
                at_ms: t,
            }),
            previous: vec![Nonce {
                hash: [0xff; HASH_LEN],
                at_ms: t,
            }],
            user,
        });
        assert_eq!(Record::decode(&record.encode()), Ok(record));
    }
}

#[test]
fn exact_session_layout() {
    let s = Session {
        uid: [7; UID_LEN],
        created_ms: 0x0102_0304_0506_0708,
        key_issued_ms: 0x1112_1314_1516_1718,
        fingerprint: None,
        secure_key: Some([0x22; HASH_LEN]),
        nonce: Some(Nonce {
            hash: [0x33; HASH_LEN],
            at_ms: 0x21,
        }),
        previous: vec![Nonce {
            hash: [0x44; HASH_LEN],
            at_ms: 0x4142,
        }],
        user: None,
    };
    // Without a user, the bytes are exactly those of the layout before
    // users existed.
    let mut expected = vec![1, 1, 0b110];
    expected.extend_from_slice(&[7; UID_LEN]);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    expected.extend_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
    expected.extend_from_slice(&[0x22; HASH_LEN]);
    expected.extend_from_slice(&[0x33; HASH_LEN]);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x21]);
    expected.push(1);
    expected.extend_from_slice(&[0x44; HASH_LEN]);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x41, 0x42]);
    assert_eq!(Record::Session(s).encode(), expected);
}

#[test]
fn exact_session_layout_with_user() {
    let s = Session {
        uid: [7; UID_LEN],
        created_ms: 0x0102_0304_0506_0708,
        key_issued_ms: 0x1112_1314_1516_1718,
        fingerprint: Some([0x11; HASH_LEN]),
        secure_key: None,
        nonce: Some(Nonce {
            hash: [0x33; HASH_LEN],
            at_ms: 0x21,
        }),
        previous: vec![Nonce {
            hash: [0x44; HASH_LEN],
            at_ms: 0x4142,
        }],
        user: Some(user("bob=1")),
    };
    let mut expected = vec![1, 1, 0b1101];
    expected.extend_from_slice(&[7; UID_LEN]);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    expected.extend_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
    expected.extend_from_slice(&[0x11; HASH_LEN]);
    expected.extend_from_slice(&[0x33; HASH_LEN]);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x21]);
    // The user after the nonce and before the previous nonces.
    expected.push(5);
    expected.extend_from_slice(b"bob=1");
    expected.push(1);
    expected.extend_from_slice(&[0x44; HASH_LEN]);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x41, 0x42]);
    let record = Record::Session(s);
    assert_eq!(record.encode(), expected);
    assert_eq!(Record::decode(&expected), Ok(record));
}

#[test]
fn exact_pointer_layout() {
    let p = Record::Pointer(Pointer {
        target: [0x5a; HASH_LEN],
        created_ms: 0x0102_0304_0506_0708,
    });
    let mut expected = vec![1, 2];
    expected.extend_from_slice(&[0x5a; HASH_LEN]);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(p.encode(), expected);
}

#[test]
fn sizes() {
    assert_eq!(
        Record::Session(session(false, false, false, 0))
            .encode()
            .len(),
        36
    );
    assert_eq!(
        Record::Session(session(true, true, true, MAX_PREVIOUS_NONCES))
            .encode()
            .len(),
        780
    );
    assert_eq!(full_session().encode().len(), 909);
    assert_eq!(
        Record::Session(session_bits(8, 0)).encode().len(),
        36 + 1 + "alice@example.com".len()
    );
}

#[test]
fn encode_into_appends() {
    let record = full_session();
    let mut out = b"prefix".to_vec();
    record.encode_into(&mut out);
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], record.encode().as_slice());
}

#[test]
fn encode_keeps_only_the_newest_16_previous_nonces() {
    let long = session(true, false, true, 40);
    let bytes = Record::Session(long.clone()).encode();
    assert_eq!(bytes.len(), Record::Session(long.clone()).encoded_len());
    let Ok(Record::Session(back)) = Record::decode(&bytes) else {
        panic!("does not decode");
    };
    assert_eq!(
        back.previous.as_slice(),
        &long.previous[..MAX_PREVIOUS_NONCES]
    );
    let mut truncated = long;
    truncated.previous.truncate(MAX_PREVIOUS_NONCES);
    assert_eq!(back, truncated);
}

#[test]
fn error_branches() {
    assert_eq!(Record::decode(&[]), Err(DecodeError::Empty));
    for v in [0u8, 2, 0x7b, 0xff] {
        assert_eq!(Record::decode(&[v]), Err(DecodeError::UnknownVersion(v)));
        assert_eq!(
            Record::decode(&[v, 1, 0]),
            Err(DecodeError::UnknownVersion(v))
        );
    }
    assert_eq!(Record::decode(&[1]), Err(DecodeError::Truncated));
    for k in [0u8, 3, 0xff] {
        assert_eq!(Record::decode(&[1, k]), Err(DecodeError::UnknownKind(k)));
    }
    assert_eq!(Record::decode(&[1, 1]), Err(DecodeError::Truncated));
    for f in [0x10u8, 0x20, 0x40, 0x80, 0xff, 0x1f] {
        let mut bytes = Record::Session(session(false, false, false, 0)).encode();
        bytes[2] = f;
        assert_eq!(Record::decode(&bytes), Err(DecodeError::UnknownFlags(f)));
    }
    // A flags byte announcing a field the bytes do not hold.
    let mut bytes = Record::Session(session(false, false, false, 0)).encode();
    bytes[2] = FLAG_FINGERPRINT;
    assert_eq!(Record::decode(&bytes), Err(DecodeError::Truncated));

    for count in [17u8, 18, 0xff] {
        let mut bytes = Record::Session(session(false, false, false, 0)).encode();
        *bytes.last_mut().unwrap() = count;
        bytes.extend(std::iter::repeat_n(0, usize::from(count) * 40));
        assert_eq!(
            Record::decode(&bytes),
            Err(DecodeError::TooManyNonces(usize::from(count)))
        );
    }
    for record in [
        full_session(),
        pointer(),
        Record::Session(session(false, false, false, 0)),
        Record::Session(session_bits(8, 0)),
    ] {
        let mut bytes = record.encode();
        bytes.push(0);
        assert_eq!(Record::decode(&bytes), Err(DecodeError::TrailingBytes));
        bytes.extend_from_slice(&record.encode());
        assert_eq!(Record::decode(&bytes), Err(DecodeError::TrailingBytes));
    }
}

/// Offset of the user's length byte in a session whose only optional
/// field is the user.
const USER_AT: usize = SESSION_FIXED_LEN - 1;

/// A session with only a user, whose user field is `len` then `id`.
fn with_raw_user(len: u8, id: &[u8]) -> Vec<u8> {
    let mut bytes = Record::Session(session(false, false, false, 0)).encode();
    bytes[2] = FLAG_USER;
    let count = bytes.pop().unwrap();
    assert_eq!(bytes.len(), USER_AT);
    bytes.push(len);
    bytes.extend_from_slice(id);
    bytes.push(count);
    bytes
}

#[test]
fn user_errors() {
    let good = with_raw_user(3, b"abc");
    assert!(matches!(
        Record::decode(&good),
        Ok(Record::Session(Session { user: Some(ref u), .. })) if u.as_bytes() == b"abc"
    ));
    assert_eq!(
        Record::decode(&with_raw_user(0, b"")),
        Err(DecodeError::InvalidUser(UserIdError::Empty))
    );
    for len in [129u8, 200, 255] {
        let bytes = with_raw_user(len, &vec![b'a'; usize::from(len)]);
        assert_eq!(
            Record::decode(&bytes),
            Err(DecodeError::InvalidUser(UserIdError::TooLong {
                len: usize::from(len)
            }))
        );
    }
    assert!(Record::decode(&with_raw_user(128, &[b'a'; 128])).is_ok());
    for byte in (0u8..=255).filter(|&b| !crate::control::is_user_byte(b)) {
        assert_eq!(
            Record::decode(&with_raw_user(3, &[b'a', b'b', byte])),
            Err(DecodeError::InvalidUser(UserIdError::ForbiddenByte {
                at: 2,
                byte
            })),
            "{byte:#04x}"
        );
    }
    // A length longer than what follows, a user flag with nothing at all.
    let mut short = with_raw_user(10, b"abc");
    assert_eq!(Record::decode(&short), Err(DecodeError::Truncated));
    short.truncate(USER_AT);
    assert_eq!(Record::decode(&short), Err(DecodeError::Truncated));
    // A length shorter than the id: the rest is read as the count and the
    // previous nonces, and does not make a record.
    assert!(Record::decode(&with_raw_user(2, b"abc")).is_err());
}

#[test]
fn display() {
    let cases = [
        (DecodeError::Empty, "empty record"),
        (DecodeError::UnknownVersion(7), "unknown record version 7"),
        (DecodeError::UnknownKind(9), "unknown record kind 9"),
        (
            DecodeError::UnknownFlags(0x10),
            "unknown session flags 0x10",
        ),
        (DecodeError::Truncated, "truncated record"),
        (
            DecodeError::TrailingBytes,
            "trailing bytes after the record",
        ),
        (
            DecodeError::TooManyNonces(17),
            "17 previous nonces, at most 16 are allowed",
        ),
        (
            DecodeError::InvalidUser(UserIdError::Empty),
            "invalid session user: the user id is empty",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn every_truncation_is_rejected() {
    for bits in 0u8..16 {
        let records = [
            Record::Session(session_bits(bits, 0)),
            Record::Session(session_bits(bits, 16)),
            pointer(),
        ];
        for record in records {
            let bytes = record.encode();
            assert_eq!(Record::decode(&bytes[..0]), Err(DecodeError::Empty));
            for len in 1..bytes.len() {
                assert_eq!(
                    Record::decode(&bytes[..len]),
                    Err(DecodeError::Truncated),
                    "length {len} of {}",
                    bytes.len()
                );
            }
        }
    }
}

#[test]
fn every_single_byte_change_is_rejected_or_canonical() {
    for record in [
        full_session(),
        pointer(),
        Record::Session(session(false, false, false, 0)),
        Record::Session(session(true, false, true, 3)),
        Record::Session(session_bits(0b1010, 2)),
    ] {
        let bytes = record.encode();
        for pos in 0..bytes.len() {
            for x in 1..=255u8 {
                let mut flipped = bytes.clone();
                flipped[pos] ^= x;
                assert_canonical(&flipped);
            }
        }
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hash(&mut self) -> Hash {
        let mut h = [0u8; HASH_LEN];
        for b in h.iter_mut() {
            *b = self.next() as u8;
        }
        h
    }

    fn time(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => u64::MAX,
            _ => self.next(),
        }
    }

    fn nonce(&mut self) -> Nonce {
        Nonce {
            hash: self.hash(),
            at_ms: self.time(),
        }
    }

    fn record(&mut self) -> Record {
        if self.below(5) == 0 {
            return Record::Pointer(Pointer {
                target: self.hash(),
                created_ms: self.time(),
            });
        }
        let mut uid = [0u8; UID_LEN];
        for b in uid.iter_mut() {
            *b = self.next() as u8;
        }
        let fingerprint = (self.below(2) == 0).then(|| self.hash());
        let secure_key = (self.below(2) == 0).then(|| self.hash());
        let nonce = (self.below(2) == 0).then(|| self.nonce());
        let count = self.below(MAX_PREVIOUS_NONCES as u64 + 1);
        let user = (self.below(2) == 0).then(|| self.user());
        Record::Session(Session {
            uid,
            created_ms: self.time(),
            key_issued_ms: self.time(),
            fingerprint,
            secure_key,
            nonce,
            previous: (0..count).map(|_| self.nonce()).collect(),
            user,
        })
    }

    fn user(&mut self) -> UserId {
        let len = 1 + self.below(MAX_USER_LEN as u64) as usize;
        // 0x21..=0x7e without ',' and ';': 92 bytes.
        let allowed: Vec<u8> = (0x21..=0x7e).filter(|&b| b != b',' && b != b';').collect();
        let id: Vec<u8> = (0..len)
            .map(|_| allowed[self.below(allowed.len() as u64) as usize])
            .collect();
        UserId::parse(&id).unwrap()
    }
}

#[test]
fn random_bytes_never_panic_and_accepted_ones_are_canonical() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let len = rng.below(200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make well-formed prefixes frequent enough to reach deep branches.
        if len >= 3 && rng.below(2) == 0 {
            bytes[0] = 1;
            bytes[1] = 1 + rng.below(2) as u8;
            bytes[2] &= 0x0f;
        }
        if Record::decode(&bytes).is_ok() {
            accepted += 1;
        }
        assert_canonical(&bytes);
    }
    assert!(
        accepted > 0,
        "the random inputs never reached a valid record"
    );
}

#[test]
fn random_records_round_trip() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let record = rng.record();
        let bytes = record.encode();
        assert_eq!(bytes.len(), record.encoded_len());
        assert_eq!(Record::decode(&bytes), Ok(record));
        // And a random single-byte change stays canonical or is rejected.
        let mut changed = bytes.clone();
        let pos = rng.below(changed.len() as u64) as usize;
        changed[pos] ^= 1 + rng.below(255) as u8;
        assert_canonical(&changed);
    }
}

#[test]
fn session_encode_matches_record_encode() {
    for previous in [0, 1, 16, 20] {
        let s = session(true, true, true, previous);
        assert_eq!(s.encode(), Record::Session(s.clone()).encode());
    }
    for s in [session(false, false, false, 0), session_bits(15, 3)] {
        assert_eq!(s.encode(), Record::Session(s.clone()).encode());
    }
}
