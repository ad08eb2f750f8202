use super::*;

const KEY: &[u8] = b"sess:0123456789abcdef";

fn enc(req: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(req, &mut out).unwrap();
    out
}

fn get() -> Request<'static> {
    Request::Get {
        key: KEY,
        touch: None,
    }
}
fn add() -> Request<'static> {
    Request::Add {
        key: KEY,
        value: b"abc",
        ttl: 60,
    }
}
fn set() -> Request<'static> {
    Request::Set {
        key: KEY,
        value: b"abc",
        ttl: 60,
        cas: None,
    }
}
fn cas_set() -> Request<'static> {
    Request::Set {
        key: KEY,
        value: b"abc",
        ttl: 60,
        cas: Some(42),
    }
}
fn delete() -> Request<'static> {
    Request::Delete {
        key: KEY,
        cas: None,
    }
}
fn cas_delete() -> Request<'static> {
    Request::Delete {
        key: KEY,
        cas: Some(42),
    }
}
fn touch() -> Request<'static> {
    Request::Touch { key: KEY, ttl: 60 }
}

fn value(v: &[u8], cas: u64, ttl: i64, idle: u64) -> Reply {
    Reply::Value {
        value: v.to_vec(),
        cas,
        ttl_left: Some(ttl),
        idle_secs: Some(idle),
    }
}

fn proto(buf: &[u8], req: &Request<'_>) -> String {
    match parse(req, buf) {
        Err(WireError::Protocol(m)) => m,
        other => panic!(
            "{:?}: expected a protocol error, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

#[test]
fn encode_exact_bytes() {
    let cases: [(Request<'_>, &[u8]); 11] = [
        (get(), b"mg sess:0123456789abcdef v c t l\r\n"),
        (
            Request::Get {
                key: KEY,
                touch: Some(1800),
            },
            b"mg sess:0123456789abcdef v c t l T1800\r\n",
        ),
        (add(), b"ms sess:0123456789abcdef 3 ME T60\r\nabc\r\n"),
        (set(), b"ms sess:0123456789abcdef 3 T60\r\nabc\r\n"),
        (cas_set(), b"ms sess:0123456789abcdef 3 T60 C42\r\nabc\r\n"),
        (
            Request::Set {
                key: KEY,
                value: b"abc",
                ttl: MAX_TTL,
                cas: Some(u64::MAX),
            },
            b"ms sess:0123456789abcdef 3 T2592000 C18446744073709551615\r\nabc\r\n",
        ),
        (delete(), b"md sess:0123456789abcdef\r\n"),
        (cas_delete(), b"md sess:0123456789abcdef C42\r\n"),
        (touch(), b"mg sess:0123456789abcdef T60\r\n"),
        (
            Request::Set {
                key: b"k",
                value: b"",
                ttl: 1,
                cas: None,
            },
            b"ms k 0 T1\r\n\r\n",
        ),
        (
            Request::Add {
                key: b"k",
                value: b"\r\n\0\xff",
                ttl: 5,
            },
            b"ms k 4 ME T5\r\n\r\n\0\xff\r\n",
        ),
    ];
    for (req, bytes) in cases {
        assert_eq!(
            enc(&req),
            bytes,
            "{req:?}: {:?}",
            String::from_utf8_lossy(&enc(&req))
        );
    }
}

#[test]
fn encode_appends() {
    let mut out = b"md x\r\n".to_vec();
    encode(&get(), &mut out).unwrap();
    assert_eq!(out, b"md x\r\nmg sess:0123456789abcdef v c t l\r\n");
}

#[test]
fn encode_rejects_bad_input_and_leaves_out_unchanged() {
    let long = vec![b'k'; MAX_KEY + 1];
    let max = vec![b'k'; MAX_KEY];
    let big = vec![0u8; MAX_VALUE + 1];
    let biggest = vec![0u8; MAX_VALUE];
    let bad_keys: [&[u8]; 8] = [
        b"",
        &long,
        b"a b",
        b"a\tb",
        b"a\0",
        b"a\x7f",
        b"\xc3\xa9",
        b"a\r\n",
    ];
    for key in bad_keys {
        for req in [
            Request::Get { key, touch: None },
            Request::Add {
                key,
                value: b"v",
                ttl: 1,
            },
            Request::Set {
                key,
                value: b"v",
                ttl: 1,
                cas: Some(1),
            },
            Request::Delete { key, cas: None },
            Request::Touch { key, ttl: 1 },
        ] {
            let mut out = b"keep".to_vec();
            assert_eq!(
                encode(&req, &mut out),
                Err(WireError::InvalidKey),
                "{key:?}"
            );
            assert_eq!(out, b"keep");
        }
    }
    assert!(encode(
        &Request::Delete {
            key: &max,
            cas: None
        },
        &mut Vec::new()
    )
    .is_ok());

    let mut out = Vec::new();
    assert_eq!(
        encode(
            &Request::Set {
                key: KEY,
                value: &big,
                ttl: 1,
                cas: None
            },
            &mut out
        ),
        Err(WireError::ValueTooLarge(MAX_VALUE + 1))
    );
    assert_eq!(
        encode(
            &Request::Add {
                key: KEY,
                value: &big,
                ttl: 1
            },
            &mut out
        ),
        Err(WireError::ValueTooLarge(MAX_VALUE + 1))
    );
    assert!(out.is_empty());
    assert!(encode(
        &Request::Add {
            key: KEY,
            value: &biggest,
            ttl: 1
        },
        &mut out
    )
    .is_ok());

    for ttl in [0, MAX_TTL + 1, u32::MAX] {
        for req in [
            Request::Get {
                key: KEY,
                touch: Some(ttl),
            },
            Request::Add {
                key: KEY,
                value: b"v",
                ttl,
            },
            Request::Set {
                key: KEY,
                value: b"v",
                ttl,
                cas: None,
            },
            Request::Touch { key: KEY, ttl },
        ] {
            let mut out = Vec::new();
            assert_eq!(encode(&req, &mut out), Err(WireError::InvalidTtl(ttl)));
            assert!(out.is_empty());
        }
    }
}

/// Every (request, reply bytes, meaning) the parser accepts.
fn good_cases() -> Vec<(Request<'static>, Vec<u8>, Reply)> {
    let mut huge = b"VA 65536 c7 t-1 l0\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', MAX_VALUE));
    huge.extend_from_slice(b"\r\n");
    vec![
        (
            get(),
            b"VA 3 c42 t59 l3\r\nabc\r\n".to_vec(),
            value(b"abc", 42, 59, 3),
        ),
        (
            get(),
            b"VA 3 c42 t-1 l0\r\nabc\r\n".to_vec(),
            value(b"abc", 42, -1, 0),
        ),
        (
            get(),
            b"VA 6 c1 t10 l2\r\na\r\nb\r\n\r\n".to_vec(),
            value(b"a\r\nb\r\n", 1, 10, 2),
        ),
        (
            get(),
            b"VA 0 c9 t1 l1\r\n\r\n".to_vec(),
            value(b"", 9, 1, 1),
        ),
        (
            get(),
            b"VA 2 c18446744073709551615\r\n\0\xff\r\n".to_vec(),
            Reply::Value {
                value: b"\0\xff".to_vec(),
                cas: u64::MAX,
                ttl_left: None,
                idle_secs: None,
            },
        ),
        (get(), huge, value(&[b'x'; MAX_VALUE], 7, -1, 0)),
        (get(), b"EN\r\n".to_vec(), Reply::Miss),
        (add(), b"HD\r\n".to_vec(), Reply::Stored),
        (add(), b"NS\r\n".to_vec(), Reply::NotStored),
        (set(), b"HD\r\n".to_vec(), Reply::Stored),
        (set(), b"NS\r\n".to_vec(), Reply::NotStored),
        (cas_set(), b"HD\r\n".to_vec(), Reply::Stored),
        (cas_set(), b"EX\r\n".to_vec(), Reply::Exists),
        (cas_set(), b"NF\r\n".to_vec(), Reply::NotFound),
        (delete(), b"HD\r\n".to_vec(), Reply::Stored),
        (delete(), b"NF\r\n".to_vec(), Reply::Miss),
        (cas_delete(), b"HD\r\n".to_vec(), Reply::Stored),
        (cas_delete(), b"NF\r\n".to_vec(), Reply::Miss),
        (cas_delete(), b"EX\r\n".to_vec(), Reply::Exists),
        (touch(), b"HD\r\n".to_vec(), Reply::Stored),
        (touch(), b"EN\r\n".to_vec(), Reply::Miss),
        (touch(), b"NF\r\n".to_vec(), Reply::Miss),
        // Flags we did not ask for are ignored; spacing is tolerated.
        (set(), b"HD c5 Oxyz\r\n".to_vec(), Reply::Stored),
        (
            get(),
            b"VA 1  c5 t3 l4 \r\nz\r\n".to_vec(),
            value(b"z", 5, 3, 4),
        ),
    ]
}

#[test]
fn parses_every_reply_kind() {
    for (req, bytes, reply) in good_cases() {
        assert_eq!(
            parse(&req, &bytes),
            Ok(Some((reply, bytes.len()))),
            "{req:?}"
        );
    }
}

#[test]
fn the_kind_of_request_is_all_the_parser_needs() {
    for (req, bytes, reply) in good_cases() {
        assert_eq!(
            parse(req.expects(), &bytes),
            Ok(Some((reply, bytes.len()))),
            "{req:?}"
        );
    }
    assert_eq!(cas_set().expects(), Expect::Set { cas: true });
    assert_eq!(delete().expects(), Expect::Delete { cas: false });
    assert_eq!(touch().key(), KEY);
}

#[test]
fn every_prefix_needs_more_and_extra_bytes_stay() {
    for (req, bytes, reply) in good_cases() {
        // The 64 KiB value: check the prefixes around the boundaries only.
        let lens: Vec<usize> = if bytes.len() > 1000 {
            (0..40).chain(bytes.len() - 40..bytes.len()).collect()
        } else {
            (0..bytes.len()).collect()
        };
        for len in lens {
            assert_eq!(parse(&req, &bytes[..len]), Ok(None), "{req:?} prefix {len}");
        }
        let mut more = bytes.clone();
        more.extend_from_slice(b"HD\r\nEN\r\n");
        assert_eq!(parse(&req, &more), Ok(Some((reply, bytes.len()))));
    }
}

#[test]
fn back_to_back_replies() {
    let buf = b"VA 2 c1 t5 l0\r\nhi\r\nEN\r\n";
    let (first, n) = parse(&get(), buf).unwrap().unwrap();
    assert_eq!(first, value(b"hi", 1, 5, 0));
    assert_eq!(parse(&get(), &buf[n..]), Ok(Some((Reply::Miss, 4))));
}

#[test]
fn server_errors_carry_the_text() {
    let cases: [(&[u8], WireError); 4] = [
        (b"ERROR\r\n", WireError::Client("ERROR".into())),
        (
            b"CLIENT_ERROR bad command line format\r\n",
            WireError::Client("bad command line format".into()),
        ),
        (
            b"SERVER_ERROR out of memory storing object\r\n",
            WireError::Server("out of memory storing object".into()),
        ),
        (b"SERVER_ERROR\r\n", WireError::Server(String::new())),
    ];
    for (bytes, error) in cases {
        for req in [get(), add(), cas_set(), delete(), touch()] {
            assert_eq!(parse(&req, bytes), Err(error.clone()));
        }
    }
}

#[test]
fn garbage_is_rejected() {
    let garbage: [&[u8]; 14] = [
        b"XX\r\n",
        b"\r\n",
        b" HD\r\n",
        b"HD\n",
        b"\n",
        b"HD\rX",
        b"HD\r\r\n",
        b"H\0D\r\n",
        b"HD \xff\r\n",
        b"hd\r\n",
        b"VALUE k 0 3\r\nabc\r\nEND\r\n",
        b"STORED\r\n",
        b"MN\r\n",
        b"ME k exp=1\r\n",
    ];
    for bytes in garbage {
        for req in [get(), add(), set(), cas_set(), delete(), touch()] {
            proto(bytes, &req);
        }
    }
}

#[test]
fn codes_that_do_not_answer_the_request_are_rejected() {
    let cases: [(Request<'_>, &[u8]); 16] = [
        (get(), b"HD\r\n"),
        (get(), b"NS\r\n"),
        (get(), b"EX\r\n"),
        (get(), b"NF\r\n"),
        (add(), b"EN\r\n"),
        (add(), b"EX\r\n"),
        (add(), b"NF\r\n"),
        (add(), b"VA 1 c1\r\nx\r\n"),
        (set(), b"EX\r\n"),
        (set(), b"NF\r\n"),
        (cas_set(), b"EN\r\n"),
        (delete(), b"EN\r\n"),
        (delete(), b"NS\r\n"),
        (delete(), b"EX\r\n"),
        (touch(), b"VA 1 c1\r\nx\r\n"),
        (touch(), b"NS\r\n"),
    ];
    for (req, bytes) in cases {
        let m = proto(bytes, &req);
        assert!(m.starts_with("unexpected"), "{m}");
    }
}

#[test]
fn bad_flags_are_rejected() {
    for bytes in [
        &b"VA 1 t5 l0\r\nx\r\n"[..],
        b"VA 1 c\r\nx\r\n",
        b"VA 1 c-1\r\nx\r\n",
        b"VA 1 c1x\r\nx\r\n",
        b"VA 1 c1 t5.0\r\nx\r\n",
        b"VA 1 c1 l-1\r\nx\r\n",
        b"VA 1 c18446744073709551616\r\nx\r\n",
    ] {
        proto(bytes, &get());
    }
}

#[test]
fn announced_lengths_are_bounded() {
    for bytes in [
        &b"VA 65537 c1\r\n"[..],
        b"VA 1073741824 c1\r\n",
        b"VA 18446744073709551615 c1\r\n",
        b"VA 99999999999999999999999999 c1\r\n",
        b"VA -1 c1\r\n",
        b"VA +1 c1\r\nx\r\n",
        b"VA 1x c1\r\nx\r\n",
        b"VA\r\n",
        b"VA  \r\n",
    ] {
        proto(bytes, &get());
    }
}

#[test]
fn data_block_must_end_with_crlf() {
    for bytes in [
        &b"VA 3 c1\r\nabcX\r\n"[..],
        b"VA 3 c1\r\nabc\rX",
        b"VA 3 c1\r\nabc\n\r",
        b"VA 3 c1\r\nabcd\r\n",
        b"VA 4 c1\r\nabc\r\n",
    ] {
        assert_eq!(proto(bytes, &get()), "data block not followed by CRLF");
    }
    assert_eq!(parse(&get(), b"VA 3 c1\r\nabc"), Ok(None));
    assert_eq!(parse(&get(), b"VA 3 c1\r\nabc\r"), Ok(None));
}

#[test]
fn header_line_length_limit() {
    // 1024 bytes before the CRLF are fine (trailing spaces are ignored).
    let mut line = b"HD".to_vec();
    line.resize(MAX_LINE, b' ');
    assert_eq!(parse(&set(), &line), Ok(None));
    let mut ok = line.clone();
    ok.extend_from_slice(b"\r");
    assert_eq!(parse(&set(), &ok), Ok(None));
    ok.extend_from_slice(b"\n");
    assert_eq!(parse(&set(), &ok), Ok(Some((Reply::Stored, MAX_LINE + 2))));
    // One more byte is too long, with or without the CRLF after it.
    line.push(b' ');
    assert_eq!(proto(&line, &set()), "reply line longer than 1024 bytes");
    line.extend_from_slice(b"\r\n");
    assert_eq!(proto(&line, &set()), "reply line longer than 1024 bytes");
    // A stream that never sends a newline is cut off, not buffered forever.
    assert!(parse(&get(), &[b'V'; 100_000]).is_err());
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
}

/// Prefix consistency on arbitrary input: a prefix parses to Ok(None) or to
/// exactly what the whole buffer parses to; nothing panics.
fn assert_prefix_consistent(req: &Request<'_>, bytes: &[u8]) {
    let full = parse(req, bytes);
    if let Ok(Some((_, n))) = &full {
        assert!(*n <= bytes.len());
    }
    for len in 0..bytes.len() {
        let partial = parse(req, &bytes[..len]);
        match (&partial, &full) {
            (Ok(None), _) => {}
            // A complete reply found in a prefix is the same reply.
            (p, f) => assert_eq!(
                p,
                f,
                "{req:?} {:?} at {len}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }
}

#[test]
fn split_garbage_at_every_boundary() {
    let samples: [&[u8]; 8] = [
        b"SERVER_ERROR out of memory\r\n",
        b"CLIENT_ERROR bad data chunk\r\n",
        b"VA 3 c1\r\nabcX\r\n",
        b"VA 70000 c1\r\n",
        b"HD\rX\r\n",
        b"XX\r\n",
        b"VA 3 c1\r\nabc\r\nHD\r\n",
        b"HD c1 t2\r\nEN\r\n",
    ];
    for bytes in samples {
        for req in [get(), add(), set(), cas_set(), delete(), touch()] {
            assert_prefix_consistent(&req, bytes);
        }
    }
}

#[test]
fn random_input_never_panics() {
    let alphabet = b"VAHDENSXFMc t l0123456789-\r\n ";
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let reqs = [get(), add(), set(), cas_set(), delete(), touch()];
    for round in 0..5_000u32 {
        let len = (rng.next() % 40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next();
                if round % 2 == 0 {
                    alphabet[(r % alphabet.len() as u64) as usize]
                } else {
                    r as u8
                }
            })
            .collect();
        let req = &reqs[(rng.next() % reqs.len() as u64) as usize];
        assert_prefix_consistent(req, &bytes);
    }
}

#[test]
fn display() {
    let cases = [
        (
            WireError::InvalidKey,
            "invalid memcached key: 1 to 250 printable ASCII characters without spaces required",
        ),
        (
            WireError::ValueTooLarge(70000),
            "value of 70000 bytes, at most 65536 are allowed",
        ),
        (
            WireError::InvalidTtl(0),
            "invalid TTL 0: 1 to 2592000 seconds required",
        ),
        (
            WireError::Encode("x".into()),
            "cannot encode the memcached command: x",
        ),
        (
            WireError::Protocol("x".into()),
            "memcached protocol error: x",
        ),
        (
            WireError::Client("ERROR".into()),
            "memcached rejected the command: ERROR",
        ),
        (
            WireError::Server("busy".into()),
            "memcached server error: busy",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}
