use super::*;
use std::fmt::Display;

use crate::time::{DAY as D, HOUR as H, MINUTE as M, SECOND as S};

/// A result with its error as the text nginx prints.
fn msg<T, E: Display>(result: Result<T, E>) -> Result<T, String> {
    result.map_err(|e| e.to_string())
}

fn time_err(s: &str) {
    assert_eq!(
        msg(parse_time_ms(s)),
        Err(format!("invalid time {}", quote(s))),
        "{s:?}"
    );
}

// --- quote -----------------------------------------------------------

#[test]
fn quote_escapes_specials() {
    assert_eq!(quote("abc"), "\"abc\"");
    assert_eq!(quote(""), "\"\"");
    assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(quote("a\0b\n"), "\"a\\u{0}b\\n\"");
    assert_eq!(quote("é"), "\"é\"");
}

// --- parse_time_ms ---------------------------------------------------

#[test]
fn time_single_units() {
    assert_eq!(parse_time_ms("100ms"), Ok(100));
    assert_eq!(parse_time_ms("1s"), Ok(S));
    assert_eq!(parse_time_ms("30m"), Ok(30 * M));
    assert_eq!(parse_time_ms("12h"), Ok(12 * H));
    assert_eq!(parse_time_ms("2d"), Ok(2 * D));
    assert_eq!(parse_time_ms("1w"), Ok(7 * D));
    assert_eq!(parse_time_ms("1M"), Ok(30 * D));
    assert_eq!(parse_time_ms("1y"), Ok(365 * D));
}

#[test]
fn time_bare_number_is_seconds() {
    assert_eq!(parse_time_ms("0"), Ok(0));
    assert_eq!(parse_time_ms("5"), Ok(5 * S));
    assert_eq!(parse_time_ms("007"), Ok(7 * S));
}

#[test]
fn time_zero_with_units() {
    assert_eq!(parse_time_ms("0s"), Ok(0));
    assert_eq!(parse_time_ms("0ms"), Ok(0));
    assert_eq!(parse_time_ms("0y0M0w0d0h0m0s0ms"), Ok(0));
}

#[test]
fn time_combined_groups() {
    assert_eq!(parse_time_ms("1h30m"), Ok(H + 30 * M));
    assert_eq!(parse_time_ms("1d 12h"), Ok(D + 12 * H));
    assert_eq!(parse_time_ms("1m  30s"), Ok(M + 30 * S));
    assert_eq!(parse_time_ms("1s500ms"), Ok(1500));
    assert_eq!(parse_time_ms("1h 30"), Ok(H + 30 * S));
    assert_eq!(parse_time_ms("1m30"), Ok(M + 30 * S));
    assert_eq!(
        parse_time_ms("1y1M1w1d1h1m1s1ms"),
        Ok(365 * D + 30 * D + 7 * D + D + H + M + S + 1)
    );
}

#[test]
fn time_repeated_unit() {
    time_err("1s1s");
    time_err("1h 1h");
    time_err("1ms1ms");
    time_err("1m1m");
}

#[test]
fn time_out_of_order_units() {
    time_err("1m1h");
    time_err("1s1m");
    time_err("1ms1s");
    time_err("1d1w");
    time_err("1w1M");
    time_err("1M1y");
    time_err("1ms1m");
}

#[test]
fn time_bare_number_must_be_last() {
    time_err("1 500ms");
    time_err("5 1s");
    time_err("1s 5");
    time_err("1ms 5");
    time_err("1 2");
}

#[test]
fn time_empty_and_spaces() {
    time_err("");
    time_err(" ");
    time_err(" 1s");
    time_err("1s ");
    time_err("1 ");
    time_err("1 s");
    time_err("1\ts");
    time_err("1h\t30m");
}

#[test]
fn time_signs_and_decimals() {
    time_err("-1");
    time_err("+1");
    time_err("-1s");
    time_err("1.5s");
    time_err("1,5s");
    time_err("0x10");
}

#[test]
fn time_unknown_units_and_garbage() {
    time_err("xyz");
    time_err("1x");
    time_err("1S");
    time_err("1H");
    time_err("1sec");
    time_err("1mss");
    time_err("1min");
    time_err("s");
    time_err("ms");
    time_err("1hs");
    time_err("1h m");
    time_err("off");
}

#[test]
fn time_unicode_and_nul() {
    time_err("1\0");
    time_err("\u{0}1s");
    time_err("１s");
    time_err("1é");
    time_err("1s\u{a0}");
    assert_eq!(
        parse_time_ms("1\0").unwrap_err().to_string(),
        "invalid time \"1\\u{0}\""
    );
}

#[test]
fn time_overflow() {
    time_err("99999999999999999999y");
    time_err("99999999999999999999");
    time_err("99999999999999999999ms");
    time_err("18446744073709551616ms");
    time_err("9223372036854775808ms");
    time_err("300000000y");
    time_err("292471209y 1000000w");
    assert_eq!(
        parse_time_ms("9223372036854775807ms"),
        Ok(9_223_372_036_854_775_807)
    );
    assert_eq!(parse_time_ms("292471208y"), Ok(292_471_208 * 365 * D));
}

#[test]
fn time_error_message() {
    assert_eq!(
        msg(parse_time_ms("xyz")),
        Err("invalid time \"xyz\"".to_string())
    );
}

// --- format_ms -------------------------------------------------------

#[test]
fn format_ms_forms() {
    assert_eq!(format_ms(0), "0");
    assert_eq!(format_ms(1), "1ms");
    assert_eq!(format_ms(1500), "1s500ms");
    assert_eq!(format_ms(60 * S), "1m");
    assert_eq!(format_ms(90 * S), "1m30s");
    assert_eq!(format_ms(H), "1h");
    assert_eq!(format_ms(365 * D), "365d");
    assert_eq!(format_ms(D + H + M + S + 1), "1d1h1m1s1ms");
    // Whatever format_ms prints, parse_time_ms reads back.
    for ms in [1, 999, 1000, 61_001, 3_600_000, 90_061_001, 365 * D] {
        assert_eq!(parse_time_ms(&format_ms(ms)), Ok(ms));
    }
}

// --- parse_time_in / parse_time_or_off --------------------------------

#[test]
fn time_in_accepts_bounds() {
    assert_eq!(parse_time_in("1ms", 1, 60 * S), Ok(1));
    assert_eq!(parse_time_in("60s", 1, 60 * S), Ok(60 * S));
    assert_eq!(parse_time_in("1m", 1, 60 * S), Ok(60 * S));
    assert_eq!(parse_time_in("0", 0, D), Ok(0));
}

#[test]
fn time_in_between_message() {
    assert_eq!(
        msg(parse_time_in("0", 1, 60 * S)),
        Err("\"0\" is out of range: must be between 1ms and 1m".to_string())
    );
    assert_eq!(
        msg(parse_time_in("61s", 1, 60 * S)),
        Err("\"61s\" is out of range: must be between 1ms and 1m".to_string())
    );
}

#[test]
fn time_in_at_most_at_least_exact() {
    assert_eq!(
        msg(parse_time_in("25h", 0, D)),
        Err("\"25h\" is out of range: must be at most 1d".to_string())
    );
    assert_eq!(
        msg(parse_time_in("500ms", S, u64::MAX)),
        Err("\"500ms\" is out of range: must be at least 1s".to_string())
    );
    assert_eq!(
        msg(parse_time_in("2s", S, S)),
        Err("\"2s\" is out of range: must be 1s".to_string())
    );
    assert_eq!(parse_time_in("1s", S, S), Ok(S));
}

#[test]
fn time_in_invalid_time() {
    assert_eq!(
        msg(parse_time_in("-1", 0, D)),
        Err("invalid time \"-1\"".to_string())
    );
    assert!(parse_time_in("off", 0, D).is_err());
}

#[test]
fn time_in_empty_range_does_not_panic() {
    assert!(parse_time_in("1s", 10 * S, S).is_err());
}

#[test]
fn time_or_off() {
    assert_eq!(parse_time_or_off("off", 0, D), Ok(None));
    assert_eq!(parse_time_or_off("1h", 0, D), Ok(Some(H)));
    assert!(parse_time_or_off("Off", 0, D).is_err());
    assert!(parse_time_or_off("OFF", 0, D).is_err());
    assert!(parse_time_or_off("on", 0, D).is_err());
    assert_eq!(
        msg(parse_time_or_off("2d", 0, D)),
        Err("\"2d\" is out of range: must be at most 1d".to_string())
    );
}

// --- parse_flag ------------------------------------------------------

#[test]
fn flag_accepts_on_off() {
    assert_eq!(parse_flag("on"), Ok(true));
    assert_eq!(parse_flag("off"), Ok(false));
}

#[test]
fn flag_ignores_case_like_nginx() {
    for s in ["On", "oN", "ON"] {
        assert_eq!(parse_flag(s), Ok(true), "{s:?}");
    }
    for s in ["Off", "OFF", "oFf"] {
        assert_eq!(parse_flag(s), Ok(false), "{s:?}");
    }
}

#[test]
fn flag_rejects_others() {
    for s in [
        "yes",
        "1",
        "",
        " on",
        "on ",
        "o",
        "onn",
        "on\0",
        "\u{131}n",
        "o\u{17f}f",
    ] {
        assert!(parse_flag(s).is_err(), "{s:?}");
    }
    assert_eq!(
        msg(parse_flag("yes")),
        Err("\"yes\" is not \"on\" or \"off\"".to_string())
    );
}

// --- parse_uint_in ---------------------------------------------------

#[test]
fn uint_accepts_range() {
    assert_eq!(parse_uint_in("0", 0, 16), Ok(0));
    assert_eq!(parse_uint_in("16", 0, 16), Ok(16));
    assert_eq!(parse_uint_in("007", 0, 16), Ok(7));
    assert_eq!(
        parse_uint_in("18446744073709551615", 0, u64::MAX),
        Ok(u64::MAX)
    );
}

#[test]
fn uint_out_of_range() {
    assert_eq!(
        msg(parse_uint_in("17", 0, 16)),
        Err("\"17\" is not a number between 0 and 16".to_string())
    );
    assert!(parse_uint_in("0", 1, 16).is_err());
}

#[test]
fn uint_rejects_syntax() {
    for s in [
        "", " ", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.0", "1_000", "１", "1\0", "abc",
    ] {
        assert!(parse_uint_in(s, 0, 1_000_000).is_err(), "{s:?}");
    }
    assert_eq!(
        msg(parse_uint_in("-1", 0, 16)),
        Err("\"-1\" is not a number between 0 and 16".to_string())
    );
}

#[test]
fn uint_overflow() {
    assert!(parse_uint_in("18446744073709551616", 0, u64::MAX).is_err());
    assert!(parse_uint_in("99999999999999999999999", 0, 16).is_err());
    assert_eq!(
        msg(parse_uint_in("18446744073709551616", 1, u64::MAX)),
        Err("\"18446744073709551616\" is not a number greater than or equal to 1".to_string())
    );
}

// --- parse_choice ----------------------------------------------------

#[test]
fn choice_returns_index() {
    assert_eq!(parse_choice("deny", &["deny", "allow"]), Ok(0));
    assert_eq!(parse_choice("allow", &["deny", "allow"]), Ok(1));
    assert_eq!(parse_choice("log", &["clear", "deny", "log"]), Ok(2));
}

#[test]
fn choice_messages() {
    assert_eq!(
        msg(parse_choice("maybe", &["deny", "allow"])),
        Err("\"maybe\" is invalid, expected \"deny\" or \"allow\"".to_string())
    );
    assert_eq!(
        msg(parse_choice("x", &["auto", "on", "off"])),
        Err("\"x\" is invalid, expected \"auto\", \"on\" or \"off\"".to_string())
    );
    assert_eq!(
        msg(parse_choice("x", &["only"])),
        Err("\"x\" is invalid, expected \"only\"".to_string())
    );
    assert_eq!(
        msg(parse_choice("x", &[])),
        Err("\"x\" is invalid".to_string())
    );
}

#[test]
fn choice_is_exact() {
    assert!(parse_choice("Deny", &["deny", "allow"]).is_err());
    assert!(parse_choice("deny ", &["deny", "allow"]).is_err());
    assert!(parse_choice("", &["deny", "allow"]).is_err());
}

// --- validate_cookie_name --------------------------------------------

#[test]
fn cookie_name_valid() {
    for s in ["sessionid", "a", "SID_1", "x-y.z", "!#$%&'*+-.^_`|~", "Z9"] {
        assert_eq!(validate_cookie_name(s), Ok(()), "{s:?}");
    }
    assert_eq!(validate_cookie_name(&"a".repeat(64)), Ok(()));
}

#[test]
fn cookie_name_invalid_chars() {
    for s in [
        "a b", "a=b", "a;b", "a,b", "a\"b", "a(b", "a)b", "a/b", "a:b", "a@b", "a[b", "a{b",
        "a\\b", "a?b", "a\tb", "a\0b", "é", "a\u{7f}",
    ] {
        assert!(validate_cookie_name(s).is_err(), "{s:?}");
    }
    assert_eq!(
        msg(validate_cookie_name("a b")),
        Err(
            "invalid cookie name \"a b\": only letters, digits and !#$%&'*+-.^_`|~ are allowed"
                .to_string()
        )
    );
}

#[test]
fn cookie_name_length() {
    assert_eq!(
        msg(validate_cookie_name("")),
        Err("cookie name must not be empty".to_string())
    );
    let long = "a".repeat(65);
    assert_eq!(
        msg(validate_cookie_name(&long)),
        Err(format!(
            "cookie name \"{long}\" is too long: 65 characters, at most 64 are allowed"
        ))
    );
}

// --- validate_secure_cookie_name, split_cookie_prefix ----------------

#[test]
fn secure_cookie_name_may_carry_a_prefix() {
    for s in [
        "__Secure-x",
        "__Host-x",
        "__Secure-sessionid_https",
        "k",
        "__Hostx",
    ] {
        assert_eq!(validate_secure_cookie_name(s), Ok(()), "{s:?}");
    }
    assert_eq!(
        msg(validate_secure_cookie_name("__secure-x")),
        Err("cookie name \"__secure-x\" must spell its prefix exactly \"__Secure-\"".to_string())
    );
    assert!(validate_secure_cookie_name("__HOST-x").is_err());
    assert_eq!(
        msg(validate_secure_cookie_name("__Secure-")),
        Err("cookie name \"__Secure-\" has nothing after its prefix".to_string())
    );
    assert!(validate_secure_cookie_name("__Host-").is_err());
    assert!(validate_secure_cookie_name("__Secure-a b").is_err());
    assert!(validate_secure_cookie_name("").is_err());
}

#[test]
fn split_cookie_prefix_is_exact() {
    assert_eq!(
        split_cookie_prefix("__Secure-x"),
        (Some(CookiePrefix::Secure), "x")
    );
    assert_eq!(
        split_cookie_prefix("__Host-x"),
        (Some(CookiePrefix::Host), "x")
    );
    assert_eq!(split_cookie_prefix("__host-x"), (None, "__host-x"));
    assert_eq!(split_cookie_prefix("x"), (None, "x"));
}

// --- parse_cookie_spec -----------------------------------------------

#[test]
fn cookie_spec_default() {
    let d = CookieSpec::default();
    assert_eq!(d.name, "sessionid");
    assert_eq!(d.path, "/");
    assert_eq!(d.domain, None);
    assert_eq!(d.samesite, SameSite::Lax);
    assert_eq!(d.prefix, None);
}

#[test]
fn cookie_prefix_as_str() {
    assert_eq!(CookiePrefix::Host.as_str(), "__Host-");
    assert_eq!(CookiePrefix::Secure.as_str(), "__Secure-");
}

#[test]
fn cookie_spec_name_only() {
    assert_eq!(
        parse_cookie_spec(&["sid"]),
        Ok(CookieSpec {
            name: "sid".to_string(),
            ..CookieSpec::default()
        })
    );
}

#[test]
fn cookie_spec_all_attributes() {
    let spec = parse_cookie_spec(&[
        "sid",
        "samesite=strict",
        "domain=.Example.com",
        "path=/app/v1",
        "prefix=__Secure-",
    ])
    .unwrap();
    assert_eq!(
        spec,
        CookieSpec {
            name: "sid".to_string(),
            path: "/app/v1".to_string(),
            domain: Some(".Example.com".to_string()),
            samesite: SameSite::Strict,
            prefix: Some(CookiePrefix::Secure),
        }
    );
}

#[test]
fn cookie_spec_samesite_values() {
    for (v, want) in [
        ("strict", SameSite::Strict),
        ("lax", SameSite::Lax),
        ("none", SameSite::None),
    ] {
        let arg = format!("samesite={v}");
        assert_eq!(parse_cookie_spec(&["s", &arg]).unwrap().samesite, want);
    }
    for v in ["Strict", "LAX", "None", "no", "off"] {
        let arg = format!("samesite={v}");
        assert!(parse_cookie_spec(&["s", &arg]).is_err(), "{v}");
    }
    assert_eq!(
        msg(parse_cookie_spec(&["s", "samesite=Strict"])),
        Err("invalid samesite \"Strict\", expected \"strict\", \"lax\" or \"none\"".to_string())
    );
}

#[test]
fn cookie_spec_prefix_values() {
    assert_eq!(
        parse_cookie_spec(&["s", "prefix=__Host-"]).unwrap().prefix,
        Some(CookiePrefix::Host)
    );
    for v in ["__host-", "__Host", "Host", "__SECURE-", "__Secure"] {
        let arg = format!("prefix={v}");
        assert!(parse_cookie_spec(&["s", &arg]).is_err(), "{v}");
    }
    assert_eq!(
        msg(parse_cookie_spec(&["s", "prefix=__host-"])),
        Err("invalid prefix \"__host-\", expected \"__Host-\" or \"__Secure-\"".to_string())
    );
}

#[test]
fn cookie_spec_missing_or_bad_name() {
    assert_eq!(
        msg(parse_cookie_spec(&[])),
        Err("cookie name is missing".to_string())
    );
    assert!(parse_cookie_spec(&[""]).is_err());
    assert!(parse_cookie_spec(&["a b"]).is_err());
    assert!(parse_cookie_spec(&["path=/"]).is_err());
}

#[test]
fn cookie_spec_name_with_prefix() {
    assert_eq!(
        msg(parse_cookie_spec(&["__Host-sid"])),
        Err(
            "cookie name \"__Host-sid\" must not start with \"__Host-\", use prefix=__Host- \
             instead"
                .to_string()
        )
    );
    assert!(parse_cookie_spec(&["__Secure-sid"]).is_err());
    assert!(parse_cookie_spec(&["__host-sid"]).is_err());
    assert!(parse_cookie_spec(&["__SECURE-sid"]).is_err());
    assert!(parse_cookie_spec(&["__Host-"]).is_err());
    // Not a prefix: fine.
    assert!(parse_cookie_spec(&["__Hostsid"]).is_ok());
    assert!(parse_cookie_spec(&["_Host-sid"]).is_ok());
}

#[test]
fn cookie_spec_unknown_attribute() {
    assert_eq!(
        msg(parse_cookie_spec(&["s", "foo=bar"])),
        Err(
            "unknown attribute \"foo=bar\", expected path=, domain=, samesite= or prefix="
                .to_string()
        )
    );
    assert!(parse_cookie_spec(&["s", "Path=/"]).is_err());
    assert!(parse_cookie_spec(&["s", "secure"]).is_err());
    assert!(parse_cookie_spec(&["s", "path"]).is_err());
    assert!(parse_cookie_spec(&["s", "=x"]).is_err());
    assert!(parse_cookie_spec(&["s", ""]).is_err());
}

#[test]
fn cookie_spec_duplicate_attribute() {
    assert_eq!(
        msg(parse_cookie_spec(&["s", "path=/a", "path=/b"])),
        Err("duplicate attribute \"path=/b\"".to_string())
    );
    assert!(parse_cookie_spec(&["s", "domain=a.com", "domain=a.com"]).is_err());
    assert!(parse_cookie_spec(&["s", "samesite=lax", "samesite=lax"]).is_err());
    assert!(parse_cookie_spec(&["s", "prefix=__Host-", "prefix=__Host-"]).is_err());
}

#[test]
fn cookie_spec_empty_value() {
    for a in ["path=", "domain=", "samesite=", "prefix="] {
        assert_eq!(
            msg(parse_cookie_spec(&["s", a])),
            Err(format!("empty value in \"{a}\"")),
            "{a}"
        );
    }
}

#[test]
fn cookie_spec_path_values() {
    for p in ["/", "/a", "/a/b/", "/a-b_c.d~e%20", "/=x"] {
        let arg = format!("path={p}");
        assert_eq!(parse_cookie_spec(&["s", &arg]).unwrap().path, p);
    }
    for p in [
        "a", "a/", "/a b", "/a;b", "/a,b", "/a\tb", "/a\0", "/é", "/\u{7f}",
    ] {
        let arg = format!("path={p}");
        assert!(parse_cookie_spec(&["s", &arg]).is_err(), "{p:?}");
    }
    assert!(parse_cookie_spec(&["s", "path=x"])
        .unwrap_err()
        .to_string()
        .starts_with("invalid path \"x\": must start with \"/\""));
}

#[test]
fn cookie_spec_domain_values() {
    let label63 = "a".repeat(63);
    let long_ok = [label63.as_str(); 4]
        .join(".")
        .get(..253)
        .unwrap()
        .to_string();
    for d in [
        "example.com",
        ".example.com",
        "localhost",
        "a-b.c0",
        "EXAMPLE.COM",
        "127.0.0.1",
        label63.as_str(),
        long_ok.as_str(),
    ] {
        let arg = format!("domain={d}");
        assert_eq!(
            parse_cookie_spec(&["s", &arg]).unwrap().domain.as_deref(),
            Some(d)
        );
    }
    let label64 = "a".repeat(64);
    let too_long = format!("{long_ok}a");
    for d in [
        "..example.com",
        "example.com.",
        "a..b",
        ".",
        "example.com:443",
        "[::1]",
        "::1",
        "a_b.com",
        "exa mple.com",
        "-a.com",
        "a-.com",
        "é.com",
        "a\0.com",
        label64.as_str(),
        too_long.as_str(),
    ] {
        let arg = format!("domain={d}");
        assert!(parse_cookie_spec(&["s", &arg]).is_err(), "{d:?}");
    }
    assert_eq!(
        msg(parse_cookie_spec(&["s", "domain=a:1"])),
        Err("invalid domain \"a:1\": must be a host name without port".to_string())
    );
}

#[test]
fn cookie_spec_host_prefix_rules() {
    let ok = parse_cookie_spec(&["s", "prefix=__Host-", "path=/"]).unwrap();
    assert_eq!(ok.prefix, Some(CookiePrefix::Host));
    assert_eq!(ok.path, "/");
    assert!(parse_cookie_spec(&["s", "path=/", "prefix=__Host-"]).is_ok());
    assert_eq!(
        msg(parse_cookie_spec(&["s", "prefix=__Host-", "path=/app"])),
        Err(
            "prefix=__Host- conflicts with path=\"/app\": __Host- cookies must have path=/ \
             and no domain"
                .to_string()
        )
    );
    assert_eq!(
        msg(parse_cookie_spec(&["s", "domain=a.com", "prefix=__Host-"])),
        Err(
            "prefix=__Host- conflicts with domain=\"a.com\": __Host- cookies must have \
             path=/ and no domain"
                .to_string()
        )
    );
    // __Secure- allows both.
    assert!(parse_cookie_spec(&["s", "prefix=__Secure-", "path=/a", "domain=a.com"]).is_ok());
}

// --- validate_key_prefix ---------------------------------------------

#[test]
fn key_prefix_valid() {
    for s in ["", "ps:", "app/session-", "!~", "a{b}[c]"] {
        assert_eq!(validate_key_prefix(s), Ok(()), "{s:?}");
    }
    assert_eq!(validate_key_prefix(&"k".repeat(100)), Ok(()));
}

#[test]
fn key_prefix_invalid_chars() {
    for s in [
        "a b", " ", "a\tb", "a\nb", "a\rb", "a\0b", "a\u{7f}", "é", "a\u{a0}",
    ] {
        assert!(validate_key_prefix(s).is_err(), "{s:?}");
    }
    assert_eq!(
        msg(validate_key_prefix("a b")),
        Err(
            "invalid key prefix \"a b\": only printable ASCII characters without spaces are \
             allowed"
                .to_string()
        )
    );
}

#[test]
fn key_prefix_too_long() {
    let long = "k".repeat(101);
    assert_eq!(
        msg(validate_key_prefix(&long)),
        Err(format!(
            "key prefix \"{long}\" is too long: 101 bytes, at most 100 are allowed"
        ))
    );
}

// --- validate_store_server -------------------------------------------
// nginx's ngx_parse_url parses what these let through (ports, brackets,
// host names): t/paranoid_config.t shows its messages.

#[test]
fn store_documented_forms() {
    for s in [
        "127.0.0.1:11211",
        "10.1.2.3:1",
        "0.0.0.0:65535",
        "[::1]:11211",
        "[2001:db8::5]:80",
        "[::ffff:127.0.0.1]:11211",
        "localhost:11211",
        "memcached-1.example.com:11211",
        "unix:/run/memcached.sock",
        "UNIX:/a b",
    ] {
        assert_eq!(validate_store_server(s), Ok(()), "{s:?}");
    }
    let max = format!("unix:/{}", "p".repeat(106));
    assert_eq!(validate_store_server(&max), Ok(()));
}

#[test]
fn store_unix_errors() {
    assert_eq!(
        validate_store_server("unix:run/m.sock"),
        Err("unix socket path in \"unix:run/m.sock\" must be absolute".to_string())
    );
    assert!(validate_store_server("unix:").is_err());
    assert_eq!(
        validate_store_server("unix:/a\0b"),
        Err("unix socket path in \"unix:/a\\u{0}b\" contains NUL".to_string())
    );
    let long = format!("unix:/{}", "p".repeat(107));
    assert_eq!(
        validate_store_server(&long),
        Err(format!(
            "unix socket path in \"{long}\" is too long: 108 bytes, at most 107 are allowed"
        ))
    );
}

#[test]
fn store_bare_ipv6_hint() {
    assert_eq!(
        validate_store_server("::1"),
        Err(
            "invalid server address \"::1\": put IPv6 addresses in brackets, e.g. \
             \"[::1]:11211\""
                .to_string()
        )
    );
    assert!(validate_store_server("::1:11211").is_err());
    assert!(validate_store_server("2001:db8::1:11211").is_err());
}

#[test]
fn store_bad_ipv4_numeric() {
    for s in [
        "256.0.0.1:1",
        "010.0.0.1:1",
        "1234:1",
        "1.2.3:1",
        "1.2.3.4.5:1",
        "..:1",
        "1234",
    ] {
        assert!(validate_store_server(s).is_err(), "{s:?}");
    }
    assert_eq!(
        validate_store_server("1234:1"),
        Err("invalid IPv4 address in \"1234:1\"".to_string())
    );
}

#[test]
fn store_bad_host() {
    for s in [
        " localhost:1",
        "a b:1",
        "a_b:1",
        "é:1",
        "-a:1",
        "a\0:1",
        "host.:1",
    ] {
        assert!(validate_store_server(s).is_err(), "{s:?}");
    }
    assert_eq!(
        validate_store_server("a_b:1"),
        Err("invalid host in \"a_b:1\"".to_string())
    );
}

// --- parse_ip_prefix -------------------------------------------------

#[test]
fn ip_prefix_valid() {
    assert_eq!(parse_ip_prefix("24", "64"), Ok((24, 64)));
    assert_eq!(parse_ip_prefix("0", "0"), Ok((0, 0)));
    assert_eq!(parse_ip_prefix("32", "128"), Ok((32, 128)));
    assert_eq!(parse_ip_prefix("08", "056"), Ok((8, 56)));
}

#[test]
fn ip_prefix_invalid() {
    assert_eq!(
        msg(parse_ip_prefix("33", "64")),
        Err("invalid IPv4 prefix length \"33\": must be a number between 0 and 32".to_string())
    );
    assert_eq!(
        msg(parse_ip_prefix("24", "129")),
        Err("invalid IPv6 prefix length \"129\": must be a number between 0 and 128".to_string())
    );
    for (a, b) in [
        ("", "64"),
        ("24", ""),
        ("-1", "64"),
        ("+24", "64"),
        ("24", "256"),
        ("24", "99999999999999999999999"),
        ("/24", "64"),
        ("24 ", "64"),
    ] {
        assert!(parse_ip_prefix(a, b).is_err(), "{a:?} {b:?}");
    }
}

// --- parse_secret ----------------------------------------------------

fn key_of(bytes: impl AsRef<[u8]>) -> SecretKey {
    SecretKey::new(bytes.as_ref()).unwrap()
}

#[test]
fn secret_trims_trailing_whitespace_only() {
    let key = "k".repeat(32);
    assert_eq!(
        parse_secret(format!("{key}\n").as_bytes()),
        Ok(key_of(&key))
    );
    assert_eq!(
        parse_secret(format!("{key} \t\r\n\n").as_bytes()),
        Ok(key_of(&key))
    );
    let lead = format!("  {}", "k".repeat(30));
    assert_eq!(parse_secret(lead.as_bytes()), Ok(key_of(&lead)));
    let inner = format!("{} {}", "k".repeat(16), "k".repeat(16));
    assert_eq!(parse_secret(inner.as_bytes()), Ok(key_of(&inner)));
}

#[test]
fn secret_binary_allowed() {
    let mut bin: Vec<u8> = (0u8..=255).collect();
    bin.push(0xff);
    assert_eq!(parse_secret(&bin), Ok(key_of(&bin)));
    // Trailing whitespace bytes in a binary key are still trimmed.
    let mut tail = vec![0u8; 32];
    tail.push(b'\n');
    assert_eq!(parse_secret(&tail), Ok(key_of([0u8; 32])));
}

#[test]
fn secret_too_short() {
    assert_eq!(
        msg(parse_secret(b"")),
        Err("secret file holds 0 bytes, at least 32 are required".to_string())
    );
    assert_eq!(
        msg(parse_secret(b" \n\t\r\n")),
        Err("secret file holds 0 bytes, at least 32 are required".to_string())
    );
    let short = format!("{}\n", "k".repeat(31));
    assert_eq!(
        msg(parse_secret(short.as_bytes())),
        Err("secret file holds 31 bytes, at least 32 are required".to_string())
    );
}

#[test]
fn secret_bounds() {
    assert!(parse_secret(&[b'k'; 4096]).is_ok());
    let mut max_nl = vec![b'k'; 4096];
    max_nl.extend_from_slice(b"\n\n");
    assert_eq!(parse_secret(&max_nl), Ok(key_of([b'k'; 4096])));
    assert_eq!(
        msg(parse_secret(&[b'k'; 4097])),
        Err("secret file holds 4097 bytes, at most 4096 are allowed".to_string())
    );
}

// --- errors ------------------------------------------------------------

#[test]
fn errors_hold_what_was_wrong() {
    use crate::secret::KeyLengthError;
    assert_eq!(
        parse_time_in("0", 1, 60_000),
        Err(ValueError::TimeOutOfRange {
            value: "0".to_owned(),
            min_ms: 1,
            max_ms: 60_000
        })
    );
    assert_eq!(
        parse_choice("x", &["a", "b"]),
        Err(ValueError::NotAChoice {
            value: "x".to_owned(),
            choices: vec!["a".to_owned(), "b".to_owned()]
        })
    );
    assert_eq!(
        parse_secret(b"short\n"),
        Err(ValueError::Secret(KeyLengthError::TooShort(5)))
    );
    assert_eq!(
        parse_cookie_spec(&["__host-s"]),
        Err(ValueError::PrefixInName {
            name: "__host-s".to_owned(),
            prefix: CookiePrefix::Host
        })
    );
}

// --- parse_control_header ----------------------------------------------

#[test]
fn control_header_names() {
    for s in [
        "X-Paranoid-Session",
        "x-paranoid-session",
        "X-App-Session",
        "a",
        "X_Session",
        "!#$%&'*+-.^_`|~09azAZ",
        "offline",
        "of",
        "on",
    ] {
        assert_eq!(parse_control_header(s), Ok(Some(s.to_owned())), "{s:?}");
    }
    let longest = "h".repeat(64);
    assert_eq!(parse_control_header(&longest), Ok(Some(longest.clone())));
    assert_eq!(
        parse_control_header(crate::control::DEFAULT_HEADER),
        Ok(Some("X-Paranoid-Session".to_owned()))
    );
}

#[test]
fn control_header_off() {
    assert_eq!(parse_control_header("off"), Ok(None));
    for s in ["OFF", "Off", "oFf"] {
        assert_eq!(
            msg(parse_control_header(s)),
            Err(format!(
                "{} is ambiguous: write \"off\" to turn the control header off",
                quote(s)
            ))
        );
    }
}

#[test]
fn control_header_invalid() {
    assert_eq!(
        msg(parse_control_header("")),
        Err("header name must not be empty".to_owned())
    );
    for s in [
        "X Session",
        "X-Session:",
        "X-Session ",
        " X-Session",
        "X(Session)",
        "X\"S\"",
        "X/S",
        "X;S",
        "X,S",
        "X=S",
        "X@S",
        "X[S]",
        "X{S}",
        "X?S",
        "X\\S",
        "X\tS",
        "X\0S",
        "X\nS",
        "Xé",
        "X\u{7f}",
    ] {
        assert_eq!(
            msg(parse_control_header(s)),
            Err(format!(
                "invalid header name {}: only letters, digits and !#$%&'*+-.^_`|~ are allowed",
                quote(s)
            )),
            "{s:?}"
        );
    }
    assert_eq!(
        msg(parse_control_header(&"h".repeat(65))),
        Err(format!(
            "header name \"{}\" is too long: 65 bytes, at most 64 are allowed",
            "h".repeat(65)
        ))
    );
}

// --- parse_user_max_sessions -------------------------------------------

#[test]
fn user_max_sessions_values() {
    assert_eq!(parse_user_max_sessions("off"), Ok(None));
    assert_eq!(parse_user_max_sessions("1"), Ok(Some(1)));
    assert_eq!(parse_user_max_sessions("5"), Ok(Some(5)));
    assert_eq!(parse_user_max_sessions("64"), Ok(Some(64)));
    assert_eq!(parse_user_max_sessions("064"), Ok(Some(64)));
    for s in [
        "0",
        "00",
        "65",
        "100",
        "-1",
        "+1",
        "1.5",
        "0x10",
        " 1",
        "1 ",
        "",
        "on",
        "OFF",
        "Off",
        "unlimited",
        "99999999999999999999999",
        "１",
    ] {
        assert_eq!(
            msg(parse_user_max_sessions(s)),
            Err(format!(
                "{} is not \"off\" or a number between 1 and 64",
                quote(s)
            )),
            "{s:?}"
        );
    }
}
