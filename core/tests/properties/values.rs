//! Directive value parsers (`values`): times, flags, numbers, choices, IP
//! prefixes, secret files, cookie names and specs, key prefixes and store
//! servers.

use std::net::{IpAddr, SocketAddr};

use paranoid_core::secret::SecretKey;
use paranoid_core::values::{
    parse_choice, parse_control_header, parse_cookie_spec, parse_flag, parse_ip_prefix,
    parse_secret, parse_time_in, parse_time_ms, parse_time_or_off, parse_uint_in,
    parse_user_max_sessions, split_cookie_prefix, validate_cookie_name, validate_key_prefix,
    validate_secure_cookie_name, validate_store_server, CookiePrefix, CookieSpec, SameSite,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::config;

const MAX_TIME_MS: u64 = i64::MAX as u64;

/// Units in the order nginx requires them, with their length in ms.
const UNITS: [(&str, u64); 8] = [
    ("y", 365 * 86_400_000),
    ("M", 30 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Error messages end up in nginx's log and as C strings: nothing that is
/// not printable may get through, however odd the input.
fn assert_printable<T: std::fmt::Debug, E: std::fmt::Display>(
    result: &Result<T, E>,
) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        let message = error.to_string();
        prop_assert!(!message.is_empty());
        prop_assert!(
            !message.chars().any(char::is_control),
            "unprintable message {:?}",
            message
        );
    }
    Ok(())
}

/// Strings mixing the characters the value parsers care about with
/// anything else (NUL, control characters, non-ASCII).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(
            prop_oneof![
                select(vec![
                    '0', '1', '9', ' ', 'y', 'M', 'w', 'd', 'h', 'm', 's', '-', '+', '.', ':', '/',
                    '[', ']', '=', '_', 'a', 'o', 'n', 'f', 'O', 'N', 'F', '\0', '\t', '"', '\\',
                    'é', '\u{7f}', '\u{85}',
                ]),
                any::<char>(),
            ],
            0..24
        )
        .prop_map(|cs| cs.into_iter().collect()),
        "[0-9]{1,25}",
    ]
}

/// One `<number><unit>` group, or a bare number (seconds).
#[derive(Debug, Clone)]
struct Group {
    unit: Option<usize>,
    number: u64,
    zeros: usize,
}

/// Valid nginx times: units in decreasing order, each at most once, an
/// optional bare number last (unless `s` or `ms` came before it), spaces
/// or nothing between groups; numbers sometimes large enough to overflow.
fn time_groups() -> impl Strategy<Value = (Vec<Group>, Vec<usize>)> {
    (
        proptest::sample::subsequence((0..UNITS.len()).collect::<Vec<_>>(), 0..=UNITS.len()),
        any::<bool>(),
        vec(
            (
                prop_oneof![8 => 0u64..100_000, 1 => any::<u64>()],
                0usize..3,
            ),
            UNITS.len() + 1,
        ),
        vec(0usize..3, UNITS.len() + 1),
    )
        .prop_map(|(units, bare, numbers, gaps)| {
            let mut groups: Vec<Group> = units
                .iter()
                .zip(&numbers)
                .map(|(&u, &(number, zeros))| Group {
                    unit: Some(u),
                    number,
                    zeros,
                })
                .collect();
            let after_seconds = units.last().is_some_and(|&u| u >= 6);
            if (bare && !after_seconds) || groups.is_empty() {
                let (number, zeros) = numbers[UNITS.len()];
                groups.push(Group {
                    unit: None,
                    number,
                    zeros,
                });
            }
            (groups, gaps)
        })
}

fn render_time(groups: &[Group], gaps: &[usize]) -> String {
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(gaps[i]));
        }
        out.push_str(&"0".repeat(g.zeros));
        out.push_str(&g.number.to_string());
        out.push_str(g.unit.map_or("", |u| UNITS[u].0));
    }
    out
}

/// What the groups add up to, or None past `i64::MAX` milliseconds.
fn time_value(groups: &[Group]) -> Option<u64> {
    let total: u128 = groups
        .iter()
        .map(|g| u128::from(g.number) * u128::from(g.unit.map_or(1000, |u| UNITS[u].1)))
        .sum();
    u64::try_from(total).ok().filter(|t| *t <= MAX_TIME_MS)
}

/// The times named in a range error: "between A and B", "at least A",
/// "at most B" or just "A".
fn times_in_message(message: &str) -> Vec<&str> {
    let expected = message.split_once("must be ").map_or("", |(_, rest)| rest);
    if let Some(range) = expected.strip_prefix("between ") {
        range.split(" and ").collect()
    } else if let Some(t) = expected
        .strip_prefix("at least ")
        .or_else(|| expected.strip_prefix("at most "))
    {
        vec![t]
    } else {
        vec![expected]
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn cookie_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}".prop_filter("reserved prefix", |n| {
        let lower = n.to_ascii_lowercase();
        !lower.starts_with("__host-") && !lower.starts_with("__secure-")
    })
}

fn domain() -> impl Strategy<Value = String> {
    (
        vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
        any::<bool>(),
    )
        .prop_map(|(labels, dot)| format!("{}{}", if dot { "." } else { "" }, labels.join(".")))
}

fn cookie_spec() -> impl Strategy<Value = CookieSpec> {
    (
        cookie_name(),
        proptest::option::of("/[!#-+\\x2d-:<-~]{0,12}"),
        proptest::option::of(domain()),
        proptest::option::of(select(vec![
            SameSite::Strict,
            SameSite::Lax,
            SameSite::None,
        ])),
        proptest::option::of(select(vec![CookiePrefix::Host, CookiePrefix::Secure])),
    )
        .prop_map(|(name, path, domain, samesite, prefix)| CookieSpec {
            name,
            path: path.unwrap_or_else(|| "/".to_owned()),
            domain,
            samesite: samesite.unwrap_or(SameSite::Lax),
            prefix,
        })
}

/// `paranoid_cookie` arguments that write `spec` out again: the name,
/// then each attribute that differs from the default, in `order`.
fn spec_args(spec: &CookieSpec, order: &[usize]) -> Vec<String> {
    let mut attrs = Vec::new();
    for &i in order {
        match i {
            0 if spec.path != "/" => attrs.push(format!("path={}", spec.path)),
            1 => attrs.extend(spec.domain.as_ref().map(|d| format!("domain={d}"))),
            2 if spec.samesite != SameSite::Lax => attrs.push(format!(
                "samesite={}",
                match spec.samesite {
                    SameSite::Strict => "strict",
                    SameSite::Lax => "lax",
                    SameSite::None => "none",
                }
            )),
            3 => attrs.extend(spec.prefix.map(|p| format!("prefix={}", p.as_str()))),
            _ => {}
        }
    }
    let mut args = vec![spec.name.clone()];
    args.extend(attrs);
    args
}

/// Prefix lengths: in range, around the limit, past a byte, or any text.
fn prefix_length(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (0..=max).prop_map(|n| n.to_string()),
        2 => (max - 1..=max + 2).prop_map(|n| n.to_string()),
        1 => (250u32..300).prop_map(|n| n.to_string()),
        1 => text(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Anything at all: no panic, and every error message is printable.
    #[test]
    fn arbitrary_strings(s in text(), t in text(), min in any::<u64>(), max in any::<u64>()) {
        let time = parse_time_ms(&s);
        assert_printable(&time)?;
        if let Ok(ms) = time {
            prop_assert!(ms <= MAX_TIME_MS);
        }
        assert_printable(&parse_time_in(&s, min, max))?;
        assert_printable(&parse_time_or_off(&s, min, max))?;
        assert_printable(&parse_flag(&s))?;
        assert_printable(&parse_uint_in(&s, min, max))?;
        assert_printable(&parse_choice(&s, &["a", t.as_str()]))?;
        assert_printable(&parse_choice(&s, &[]))?;
        assert_printable(&parse_ip_prefix(&s, &t))?;
        assert_printable(&validate_cookie_name(&s))?;
        assert_printable(&validate_secure_cookie_name(&s))?;
        assert_printable(&validate_key_prefix(&s))?;
        assert_printable(&parse_cookie_spec(&[&s, &t]))?;
        assert_printable(&parse_cookie_spec(&[&s]))?;
        assert_printable(&parse_secret(s.as_bytes()))?;
        assert_printable(&parse_control_header(&s))?;
        assert_printable(&parse_user_max_sessions(&s))?;
        assert_printable(&validate_store_server(&s))?;
    }

    /// Generated valid times parse to the sum of their groups, or are
    /// refused when that sum passes `i64::MAX` milliseconds.
    #[test]
    fn times_add_up((groups, gaps) in time_groups()) {
        let s = render_time(&groups, &gaps);
        prop_assert_eq!(parse_time_ms(&s).ok(), time_value(&groups), "{:?}", s);
    }

    /// A time with something changed around it is refused: a second
    /// bare number, a repeated unit, a leading or trailing space, a sign.
    #[test]
    fn broken_times_are_refused((groups, gaps) in time_groups(), how in 0usize..5) {
        let s = render_time(&groups, &gaps);
        let broken = match how {
            0 => format!(" {s}"),
            1 => format!("{s} "),
            2 => format!("-{s}"),
            // The last unit again, or a second bare number.
            3 => match groups.last().and_then(|g| g.unit) {
                Some(u) => format!("{s}1{}", UNITS[u].0),
                None => format!("{s} 1"),
            },
            _ => format!("{s}.5"),
        };
        prop_assert!(parse_time_ms(&broken).is_err(), "{:?}", broken);
    }

    /// The times that range errors print read back as the bounds: the
    /// message's formatter and the parser agree.
    #[test]
    fn range_messages_read_back(a in 0..=MAX_TIME_MS, b in 0..=MAX_TIME_MS, exact in any::<bool>()) {
        let (min, max) = if exact { (a.max(1), a.max(1)) } else { (a.min(b).max(1), a.max(b).max(1)) };
        // "0" is below every min here, so it is always out of range.
        let message = parse_time_in("0", min, max).unwrap_err().to_string();
        let times = times_in_message(&message);
        let parsed: Vec<u64> = times.iter().filter_map(|t| parse_time_ms(t).ok()).collect();
        prop_assert_eq!(parsed.len(), times.len(), "{}", message);
        let expected = if min == max || max >= MAX_TIME_MS {
            vec![min]
        } else {
            vec![min, max]
        };
        prop_assert_eq!(parsed, expected, "{}", message);
        // And with min = 0, "at most MAX".
        if max < MAX_TIME_MS {
            let message = parse_time_in(&format!("{}ms", max + 1), 0, max)
                .unwrap_err()
                .to_string();
            let times = times_in_message(&message);
            prop_assert_eq!(times.len(), 1);
            prop_assert_eq!(parse_time_ms(times[0]), Ok(max), "{}", message);
        }
    }

    /// In-range times are returned as they are, "off" only where allowed.
    #[test]
    fn time_ranges((groups, gaps) in time_groups(), min in 0..=MAX_TIME_MS, max in 0..=MAX_TIME_MS) {
        let s = render_time(&groups, &gaps);
        let expected = time_value(&groups).filter(|t| *t >= min && *t <= max);
        prop_assert_eq!(parse_time_in(&s, min, max).ok(), expected);
        prop_assert_eq!(parse_time_or_off(&s, min, max).ok(), expected.map(Some));
        prop_assert_eq!(parse_time_or_off("off", min, max), Ok(None));
    }

    /// Numbers: digits only, in range; what is accepted prints back to a
    /// string that parses to the same number.
    #[test]
    fn unsigned_numbers(s in prop_oneof![text(), any::<u64>().prop_map(|n| n.to_string())], min in any::<u64>(), max in any::<u64>()) {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let value = s.parse::<u64>().ok().filter(|_| digits);
        let result = parse_uint_in(&s, min, max);
        prop_assert_eq!(result.clone().ok(), value.filter(|n| *n >= min && *n <= max));
        if let Ok(n) = result {
            prop_assert_eq!(parse_uint_in(&n.to_string(), min, max), Ok(n));
        }
    }

    #[test]
    fn ip_prefixes(v4 in prefix_length(32), v6 in prefix_length(128)) {
        let bits = |s: &str, max: u64| {
            Some(s)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n <= max)
                .and_then(|n| u8::try_from(n).ok())
        };
        let expected = bits(&v4, 32).zip(bits(&v6, 128));
        let result = parse_ip_prefix(&v4, &v6);
        prop_assert_eq!(result.clone().ok(), expected);
        if let Ok((a, b)) = result {
            prop_assert_eq!(parse_ip_prefix(&a.to_string(), &b.to_string()), Ok((a, b)));
        }
    }

    #[test]
    fn flags_and_choices(s in text(), choices in vec("[a-z]{0,3}", 0..5)) {
        prop_assert_eq!(parse_flag(&s).ok(), match s.to_ascii_lowercase().as_str() { "on" => Some(true), "off" => Some(false), _ => None });
        let choices: Vec<&str> = choices.iter().map(String::as_str).collect();
        for (i, c) in choices.iter().enumerate() {
            // The first of equal choices wins.
            let first = choices.iter().position(|x| x == c).unwrap_or(i);
            prop_assert_eq!(parse_choice(c, &choices), Ok(first));
        }
        prop_assert_eq!(parse_choice(&s, &choices).ok(), choices.iter().position(|c| *c == s));
    }

    /// Secret files: trailing ASCII whitespace goes, the rest is kept byte
    /// for byte and must be 32 to 4096 bytes long.
    #[test]
    fn secrets(
        body in prop_oneof![
            vec(any::<u8>(), 0..64),
            // Around the 4096-byte limit: the same random 64 bytes repeated
            // (generating 4 KiB byte by byte costs more than the check).
            (vec(any::<u8>(), 64), 4090usize..4100)
                .prop_map(|(chunk, len)| chunk.iter().copied().cycle().take(len).collect()),
        ],
        tail in vec(select(vec![b' ', b'\t', b'\n', b'\r', 0x0c, 0x0b, 0]), 0..4),
    ) {
        let mut bytes = body;
        bytes.extend_from_slice(&tail);
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c))
            .map_or(0, |i| i + 1);
        let result = parse_secret(&bytes);
        assert_printable(&result)?;
        if (32..=4096).contains(&end) {
            prop_assert_eq!(result, Ok(SecretKey::new(&bytes[..end]).unwrap()));
        } else {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn names_and_key_prefixes(s in prop_oneof![
        text(),
        "[!-~]{0,110}",
        cookie_name(),
        "(__[Hh][Oo][Ss][Tt]-|__[Ss][Ee][Cc][Uu][Rr][Ee]-)[a-z_]{0,4}",
    ]) {
        let name_ok = !s.is_empty() && s.len() <= 64 && s.chars().all(is_tchar);
        prop_assert_eq!(validate_cookie_name(&s).is_ok(), name_ok);
        // A secure cookie name is a cookie name whose prefix, if any, is
        // spelled exactly and followed by something.
        let lower = s.to_ascii_lowercase();
        let prefix_ok = ["__Host-", "__Secure-"].iter().all(|p| {
            !lower.starts_with(&p.to_ascii_lowercase()) || (s.starts_with(p) && s.len() > p.len())
        });
        prop_assert_eq!(validate_secure_cookie_name(&s).is_ok(), name_ok && prefix_ok);
        let (p, rest) = split_cookie_prefix(&s);
        prop_assert_eq!(format!("{}{rest}", p.map_or("", |p| p.as_str())), s.clone());
        let prefix_ok = s.len() <= 100 && s.bytes().all(|b| b.is_ascii_graphic());
        prop_assert_eq!(validate_key_prefix(&s).is_ok(), prefix_ok);
    }

    /// `paranoid_session_control_header`: exactly `off`, or a token of 1 to
    /// 64 bytes that is not another spelling of `off`, kept as written.
    #[test]
    fn control_header_names(s in prop_oneof![
        text(),
        "[!-~]{0,70}",
        cookie_name(),
        "[Oo][Ff][Ff]",
    ]) {
        let result = parse_control_header(&s);
        let token = !s.is_empty() && s.len() <= 64 && s.chars().all(is_tchar);
        let expected = if s == "off" {
            Some(None)
        } else if token && !s.eq_ignore_ascii_case("off") {
            Some(Some(s.clone()))
        } else {
            None
        };
        prop_assert_eq!(result.ok(), expected);
    }

    /// `paranoid_user_max_sessions`: exactly `off`, or digits whose value
    /// is 1 to 64.
    #[test]
    fn user_max_sessions(s in prop_oneof![
        text(),
        "[0-9]{1,3}",
        (0u64..100).prop_map(|n| n.to_string()),
        Just("off".to_owned()),
    ]) {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let value = s.parse::<u32>().ok().filter(|n| digits && (1..=64).contains(n));
        let expected = if s == "off" { Some(None) } else { value.map(Some) };
        prop_assert_eq!(parse_user_max_sessions(&s).ok(), expected);
    }

    /// Generated specs, written out as arguments in any order, parse back
    /// to themselves, unless they break a __Host- rule.
    #[test]
    fn cookie_specs_read_back(spec in cookie_spec(), order in Just(vec![0usize, 1, 2, 3]).prop_shuffle()) {
        let args = spec_args(&spec, &order);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = parse_cookie_spec(&args);
        assert_printable(&result)?;
        let host_rules_broken = spec.prefix == Some(CookiePrefix::Host)
            && (spec.domain.is_some() || spec.path != "/");
        if host_rules_broken {
            prop_assert!(result.is_err());
        } else {
            prop_assert_eq!(result, Ok(spec));
        }
    }

    /// Attributes with arbitrary values: what is accepted is valid.
    #[test]
    fn cookie_spec_attributes(
        name in prop_oneof![cookie_name(), text()],
        attrs in vec((select(vec!["path", "domain", "samesite", "prefix", "Path", "x", ""]), text()), 0..5),
    ) {
        let attrs: Vec<String> = attrs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec![name.as_str()];
        args.extend(attrs.iter().map(String::as_str));
        let result = parse_cookie_spec(&args);
        assert_printable(&result)?;
        if let Ok(spec) = result {
            prop_assert_eq!(&spec.name, &name);
            prop_assert!(validate_cookie_name(&spec.name).is_ok());
            prop_assert!(spec.path.starts_with('/'));
            prop_assert!(spec.path.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b','));
            if let Some(d) = &spec.domain {
                prop_assert!(d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            }
            if spec.prefix == Some(CookiePrefix::Host) {
                prop_assert!(spec.domain.is_none() && spec.path == "/");
            }
        }
    }

    /// Addresses written the way `SocketAddr` prints them, and absolute
    /// unix socket paths that fit, are accepted; an IPv6 address without
    /// brackets and a relative path are not.
    #[test]
    fn store_servers(
        ip in any::<IpAddr>(),
        port in 1u16..,
        path in "/[a-zA-Z0-9._/-]{0,120}",
        unix in select(vec!["unix:", "UNIX:", "Unix:"]),
    ) {
        let text = SocketAddr::new(ip, port).to_string();
        prop_assert_eq!(validate_store_server(&text), Ok(()), "{}", text);
        let text = format!("{unix}{path}");
        prop_assert_eq!(validate_store_server(&text).is_ok(), path.len() <= 107, "{}", text);
        let relative = format!("{unix}{}", path.trim_start_matches('/'));
        prop_assert!(validate_store_server(&relative).is_err(), "{}", relative);
        let ip6 = match ip { IpAddr::V6(v6) => v6, IpAddr::V4(v4) => v4.to_ipv6_mapped() };
        let no_brackets = format!("{ip6}:{port}");
        prop_assert!(validate_store_server(&no_brackets).is_err(), "{}", no_brackets);
    }
}
