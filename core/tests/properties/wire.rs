//! The incremental memcached reply parser, `wire::parse`.

use paranoid_core::wire::{parse, Reply, Request, WireError, MAX_LINE, MAX_VALUE};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::alloc::measure;
use crate::config;

const KEY: &[u8] = b"ps:0123456789abcdef";

/// Heap a parse may use besides the value itself: error texts and the
/// `memcache` crate's view of one header line (at most MAX_LINE bytes).
const PARSE_OVERHEAD: usize = 4 * MAX_LINE;

/// The six kinds of request, each with a different set of valid replies.
fn requests() -> [Request<'static>; 6] {
    [
        Request::Get {
            key: KEY,
            touch: None,
        },
        Request::Touch { key: KEY, ttl: 60 },
        Request::Add {
            key: KEY,
            value: b"v",
            ttl: 60,
        },
        Request::Set {
            key: KEY,
            value: b"v",
            ttl: 60,
            cas: None,
        },
        Request::Set {
            key: KEY,
            value: b"v",
            ttl: 60,
            cas: Some(7),
        },
        Request::Delete {
            key: KEY,
            cas: None,
        },
    ]
}

/// The codes that answer request `i` of [`requests`], with their meaning
/// (VA is generated separately).
fn codes(i: usize) -> &'static [(&'static str, Reply)] {
    const GET: &[(&str, Reply)] = &[("EN", Reply::Miss)];
    const TOUCH: &[(&str, Reply)] = &[
        ("HD", Reply::Stored),
        ("EN", Reply::Miss),
        ("NF", Reply::Miss),
    ];
    const STORE: &[(&str, Reply)] = &[("HD", Reply::Stored), ("NS", Reply::NotStored)];
    const CAS: &[(&str, Reply)] = &[
        ("HD", Reply::Stored),
        ("NS", Reply::NotStored),
        ("EX", Reply::Exists),
        ("NF", Reply::NotFound),
    ];
    const DELETE: &[(&str, Reply)] = &[("HD", Reply::Stored), ("NF", Reply::Miss)];
    match i {
        0 => GET,
        1 => TOUCH,
        2 | 3 => STORE,
        4 => CAS,
        _ => DELETE,
    }
}

fn spaces() -> impl Strategy<Value = String> {
    (1usize..3).prop_map(|n| " ".repeat(n))
}

/// A `VA` reply to a get: value bytes (CR and LF included), CAS, and the
/// optional TTL and idle flags in any order, with any spacing and an
/// opaque flag we did not ask for.
fn value_reply() -> impl Strategy<Value = (Vec<u8>, Reply)> {
    (
        prop_oneof![
            4 => vec(any::<u8>(), 0..64),
            1 => vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..300),
        ],
        any::<u64>(),
        proptest::option::of(prop_oneof![Just(-1i64), 0i64..100_000_000]),
        proptest::option::of(0u64..10_000_000_000),
        proptest::option::of("[A-Za-z0-9]{1,8}"),
        Just([0usize, 1, 2, 3]).prop_shuffle(),
        [spaces(), spaces(), spaces(), spaces()],
        0usize..3,
    )
        .prop_map(|(value, cas, ttl, idle, opaque, order, gaps, trailing)| {
            let mut flags = Vec::new();
            for i in order {
                match i {
                    0 => flags.push(format!("c{cas}")),
                    1 => flags.extend(ttl.map(|t| format!("t{t}"))),
                    2 => flags.extend(idle.map(|l| format!("l{l}"))),
                    _ => flags.extend(opaque.as_ref().map(|o| format!("O{o}"))),
                }
            }
            let mut line = format!("VA{}{}", gaps[0], value.len());
            for (flag, gap) in flags.iter().zip(gaps.iter().cycle().skip(1)) {
                line.push_str(gap);
                line.push_str(flag);
            }
            line.push_str(&" ".repeat(trailing));
            let mut bytes = line.into_bytes();
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&value);
            bytes.extend_from_slice(b"\r\n");
            let reply = Reply::Value {
                value,
                cas,
                ttl_left: ttl,
                idle_secs: idle,
            };
            (bytes, reply)
        })
}

/// A valid reply to request `i`.
fn reply_to(i: usize) -> BoxedStrategy<(Vec<u8>, Reply)> {
    let simple = (0..codes(i).len(), proptest::option::of("[A-Za-z0-9]{1,8}")).prop_map(
        move |(c, opaque)| {
            let (code, reply) = &codes(i)[c];
            let line = match opaque {
                Some(o) => format!("{code} O{o}\r\n"),
                None => format!("{code}\r\n"),
            };
            (line.into_bytes(), reply.clone())
        },
    );
    if i == 0 {
        prop_oneof![3 => value_reply(), 1 => simple].boxed()
    } else {
        simple.boxed()
    }
}

/// (request index, reply bytes, meaning).
fn exchange() -> impl Strategy<Value = (usize, Vec<u8>, Reply)> {
    (0usize..6).prop_flat_map(|i| reply_to(i).prop_map(move |(bytes, reply)| (i, bytes, reply)))
}

/// Bytes that reply parsing cares about, or anything.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(&b"VA"[..]),
        Just(&b"HD"[..]),
        Just(&b"EN"[..]),
        Just(&b"NS"[..]),
        Just(&b"EX"[..]),
        Just(&b"NF"[..]),
        Just(&b"MN"[..]),
        Just(&b"ERROR"[..]),
        Just(&b"SERVER_ERROR"[..]),
        Just(&b"CLIENT_ERROR"[..]),
        Just(&b" "[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\n"[..]),
        Just(&b"0"[..]),
        Just(&b"3"[..]),
        Just(&b"65536"[..]),
        Just(&b"4294967296"[..]),
        Just(&b"c1"[..]),
        Just(&b"t-1"[..]),
        Just(&b"l9"[..]),
        Just(&b"abc"[..]),
    ];
    prop_oneof![
        vec(any::<u8>(), 0..80),
        vec(word, 0..16).prop_map(|words| words.concat()),
    ]
}

/// A prefix of `bytes` parses to Ok(None) or to what all of it parses to;
/// a complete reply consumes no more than it was given.
fn prefix_consistent(req: &Request<'_>, bytes: &[u8]) -> Result<(), TestCaseError> {
    let full = parse(req, bytes);
    if let Ok(Some((_, n))) = &full {
        prop_assert!(*n > 0 && *n <= bytes.len());
    }
    for len in 0..bytes.len() {
        let part = parse(req, &bytes[..len]);
        if part != Ok(None) {
            prop_assert_eq!(&part, &full, "prefix of {} bytes", len);
        }
    }
    Ok(())
}

/// The first space-separated token of a complete reply line, if any.
fn first_token(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    bytes[..end].split(|&b| b == b' ').next()
}

proptest! {
    #![proptest_config(config(256))]

    /// A valid reply parses to its meaning, consuming exactly its bytes,
    /// whatever follows it; every shorter prefix asks for more bytes.
    #[test]
    fn valid_replies((i, bytes, reply) in exchange(), after in noise()) {
        let req = &requests()[i];
        prop_assert_eq!(parse(req, &bytes), Ok(Some((reply.clone(), bytes.len()))));
        for len in 0..bytes.len() {
            prop_assert_eq!(parse(req, &bytes[..len]), Ok(None), "prefix of {} bytes", len);
        }
        let mut more = bytes.clone();
        more.extend_from_slice(&after);
        prop_assert_eq!(parse(req, &more), Ok(Some((reply, bytes.len()))));
    }

    /// Replies back to back, delivered in arbitrary pieces to a buffer that
    /// is parsed after each piece (as the store does): the same replies
    /// come out, in order, as from the whole stream at once.
    #[test]
    fn replies_split_anywhere(
        exchanges in vec(exchange(), 1..6),
        cuts in vec(any::<proptest::sample::Index>(), 0..12),
    ) {
        let stream: Vec<u8> = exchanges.iter().flat_map(|(_, b, _)| b.clone()).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&stream[from..cut]);
            from = cut;
            while let Some((i, _, _)) = exchanges.get(got.len()) {
                match parse(&requests()[*i], &buf) {
                    Ok(Some((reply, n))) => {
                        got.push(reply);
                        buf.drain(..n);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                }
            }
        }
        prop_assert!(buf.is_empty());
        let expected: Vec<Reply> = exchanges.into_iter().map(|(_, _, r)| r).collect();
        prop_assert_eq!(got, expected);
    }

    /// Arbitrary bytes for every kind of request: no panic, prefixes agree
    /// with the whole, small heap use, and a reply is only ever accepted
    /// when it starts with a code that answers the request.
    #[test]
    fn arbitrary_bytes(bytes in noise()) {
        for (i, req) in requests().iter().enumerate() {
            let (result, usage) = measure(|| parse(req, &bytes));
            prop_assert!(usage.largest <= PARSE_OVERHEAD, "{:?}", usage);
            if let Ok(Some(_)) = result {
                let token = first_token(&bytes).unwrap_or_default();
                let valid = token == b"VA" && i == 0
                    || codes(i).iter().any(|(code, _)| code.as_bytes() == token);
                prop_assert!(valid, "accepted {:?}", String::from_utf8_lossy(&bytes));
            }
            prefix_consistent(req, &bytes)?;
        }
    }

    /// A complete line that does not start with a code the request expects
    /// is an error at once: the parser never waits for more bytes after a
    /// reply it cannot use.
    #[test]
    fn garbage_lines_are_errors(
        code in select(vec!["VA", "HD", "EN", "NS", "EX", "NF", "MN", "ME", "OK", "", "H"]),
        rest in prop_oneof![
            Just(Vec::new()),
            "( [A-Za-z][A-Za-z0-9-]{0,5}){1,3}".prop_map(String::into_bytes),
            vec(any::<u8>().prop_filter("line end", |b| *b != b'\r' && *b != b'\n'), 0..60),
        ],
        i in 0usize..6,
    ) {
        let mut line = code.as_bytes().to_vec();
        line.extend_from_slice(&rest);
        let mut bytes = line.clone();
        bytes.extend_from_slice(b"\r\n");
        let token = line.split(|&b| b == b' ').next().unwrap_or_default();
        let valid = token == b"VA" && i == 0
            || codes(i).iter().any(|(code, _)| code.as_bytes() == token);
        let result = parse(&requests()[i], &bytes);
        if !valid {
            prop_assert!(result.is_err(), "{:?} -> {:?}", String::from_utf8_lossy(&bytes), result);
        }
    }

    /// Declared lengths above MAX_VALUE, however large, are refused as soon
    /// as the header line is complete, without waiting for the data and
    /// without allocating for it.
    #[test]
    fn huge_declared_lengths(
        len in prop_oneof![
            // Up to 4 GiB, past the `memcache` crate's own limit (1 GiB).
            (MAX_VALUE as u64 + 1..=1 << 32).prop_map(|n| n.to_string()),
            (MAX_VALUE as u64 + 1..=u64::MAX).prop_map(|n| n.to_string()),
            "[1-9][0-9]{20,60}",
        ],
        data in vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = format!("VA {len} c1 t-1 l0\r\n").into_bytes();
        bytes.extend_from_slice(&data);
        for req in requests() {
            let (result, usage) = measure(|| parse(&req, &bytes));
            prop_assert!(matches!(result, Err(WireError::Protocol(_))), "{:?}", result);
            prop_assert!(usage.largest <= PARSE_OVERHEAD, "{:?}", usage);
        }
    }

    /// An announced value within the limit is not allocated before all of
    /// it has arrived, and then exactly once.
    #[test]
    fn values_are_allocated_once_complete(len in 0..=MAX_VALUE, have in any::<proptest::sample::Index>()) {
        let header = format!("VA {len} c1\r\n").into_bytes();
        let mut bytes = header.clone();
        bytes.resize(header.len() + len, b'x');
        bytes.extend_from_slice(b"\r\n");
        let req = &requests()[0];
        let cut = have.index(bytes.len());
        let (partial, usage) = measure(|| parse(req, &bytes[..cut]));
        prop_assert_eq!(partial, Ok(None));
        prop_assert!(usage.largest <= PARSE_OVERHEAD, "{:?}", usage);
        let (whole, usage) = measure(|| parse(req, &bytes));
        let complete = matches!(
            whole,
            Ok(Some((Reply::Value { ref value, .. }, n))) if value.len() == len && n == bytes.len()
        );
        prop_assert!(complete);
        prop_assert!(usage.total <= len + PARSE_OVERHEAD, "{:?}", usage);
    }
}

/// A header line that never ends is refused once it passes MAX_LINE, not
/// buffered for ever, at every length past the limit.
#[test]
fn endless_lines_are_cut_off() {
    for byte in [b'V', b' ', b'0', b'~'] {
        let mut bytes = b"VA ".to_vec();
        bytes.resize(MAX_LINE + 1, byte);
        for extra in 0..64 {
            bytes.push(byte);
            let (result, usage) = measure(|| parse(&requests()[0], &bytes));
            assert!(matches!(result, Err(WireError::Protocol(_))), "{extra}");
            assert!(usage.largest <= PARSE_OVERHEAD, "{usage:?}");
        }
    }
}
