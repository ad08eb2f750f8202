//! Reading the module's cookies from `Cookie` headers and writing its
//! `Set-Cookie` headers.

use crate::values::SameSite;

/// Longest cookie value looked at; anything longer counts as absent.
pub const MAX_VALUE_LEN: usize = 256;

/// The value of the first cookie called `name` in `header` (one `Cookie`
/// header line), if any. Pairs are separated by `;`, optional spaces around
/// them are ignored, and a pair without `=` is skipped.
pub fn find<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        if trim(key) != name {
            return None;
        }
        let value = trim(value);
        // A quoted value (RFC 6265 allows DQUOTE around cookie-value).
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        (value.len() <= MAX_VALUE_LEN).then_some(value)
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Attributes every cookie of the module carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a> {
    pub path: &'a str,
    pub domain: Option<&'a str>,
    pub samesite: SameSite,
    pub secure: bool,
}

/// A `Set-Cookie` value: always HttpOnly; `expire` asks the browser to drop
/// the cookie now.
pub fn set_cookie(name: &str, value: &str, attrs: &Attributes<'_>, expire: bool) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 96);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
    out.push_str("; Path=");
    out.push_str(attrs.path);
    if let Some(domain) = attrs.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if expire {
        out.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT");
    }
    out.push_str("; HttpOnly");
    if attrs.secure {
        out.push_str("; Secure");
    }
    out.push_str(match attrs.samesite {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    out
}

/// `paranoid_harden_cookies`: an upstream `Set-Cookie` value with
/// `HttpOnly`, `Secure` (over HTTPS) and `SameSite=Lax` added where missing.
/// Attributes already there are kept as they are. None: nothing to add.
pub fn harden(value: &[u8], https: bool) -> Option<Vec<u8>> {
    let mut has = (false, false, false); // HttpOnly, Secure, SameSite
    for attr in value.split(|&b| b == b';').skip(1) {
        let attr = trim(attr);
        let name = attr
            .split(|&b| b == b'=')
            .next()
            .map(trim)
            .unwrap_or_default();
        if name.eq_ignore_ascii_case(b"httponly") {
            has.0 = true;
        } else if name.eq_ignore_ascii_case(b"secure") {
            has.1 = true;
        } else if name.eq_ignore_ascii_case(b"samesite") {
            has.2 = true;
        }
    }
    let mut out = value.to_vec();
    let before = out.len();
    if !has.0 {
        out.extend_from_slice(b"; HttpOnly");
    }
    if https && !has.1 {
        out.extend_from_slice(b"; Secure");
    }
    if !has.2 {
        out.extend_from_slice(b"; SameSite=Lax");
    }
    (out.len() != before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_others() {
        let h = b"a=1; sessionid=abc; b=2";
        assert_eq!(find(h, b"sessionid"), Some(&b"abc"[..]));
        assert_eq!(find(h, b"a"), Some(&b"1"[..]));
        assert_eq!(find(h, b"b"), Some(&b"2"[..]));
        assert_eq!(find(h, b"c"), None);
        assert_eq!(find(h, b"session"), None);
    }

    #[test]
    fn spacing_quotes_and_odd_pairs() {
        assert_eq!(find(b" x = 1 ;y=2", b"x"), Some(&b"1"[..]));
        assert_eq!(find(b"x=\"q\"", b"x"), Some(&b"q"[..]));
        assert_eq!(find(b"x=\"", b"x"), Some(&b"\""[..]));
        assert_eq!(find(b"novalue; x=", b"x"), Some(&b""[..]));
        assert_eq!(find(b";;;", b"x"), None);
        assert_eq!(find(b"", b"x"), None);
        assert_eq!(find(b"x=a=b", b"x"), Some(&b"a=b"[..]));
    }

    #[test]
    fn first_of_duplicates_wins() {
        assert_eq!(find(b"x=1; x=2", b"x"), Some(&b"1"[..]));
    }

    #[test]
    fn oversized_values_are_absent() {
        let mut h = b"x=".to_vec();
        h.extend(std::iter::repeat_n(b'a', MAX_VALUE_LEN + 1));
        assert_eq!(find(&h, b"x"), None);
        h.truncate(2 + MAX_VALUE_LEN);
        assert_eq!(find(&h, b"x").map(<[u8]>::len), Some(MAX_VALUE_LEN));
    }

    #[test]
    fn non_utf8_and_nul_do_not_matter() {
        assert_eq!(find(b"\xff\x00=1; x=\xfe", b"x"), Some(&b"\xfe"[..]));
    }

    #[test]
    fn harden_adds_only_what_is_missing() {
        assert_eq!(
            harden(b"a=1", false).as_deref(),
            Some(&b"a=1; HttpOnly; SameSite=Lax"[..])
        );
        assert_eq!(
            harden(b"a=1", true).as_deref(),
            Some(&b"a=1; HttpOnly; Secure; SameSite=Lax"[..])
        );
        assert_eq!(
            harden(b"b=2; httponly; SameSite=Strict", false).as_deref(),
            None
        );
        assert_eq!(
            harden(b"b=2; HttpOnly; SameSite=Strict", true).as_deref(),
            Some(&b"b=2; HttpOnly; SameSite=Strict; Secure"[..])
        );
        assert_eq!(
            harden(b"c=3; Path=/; Secure ; samesite = none; HTTPONLY", true),
            None
        );
        // "secure" inside a value is not the attribute
        assert_eq!(
            harden(b"d=secure; Path=/httponly", false).as_deref(),
            Some(&b"d=secure; Path=/httponly; HttpOnly; SameSite=Lax"[..])
        );
    }

    #[test]
    fn set_cookie_attributes() {
        let attrs = Attributes {
            path: "/",
            domain: None,
            samesite: SameSite::Lax,
            secure: false,
        };
        assert_eq!(
            set_cookie("sid", "v", &attrs, false),
            "sid=v; Path=/; HttpOnly; SameSite=Lax"
        );
        let attrs = Attributes {
            path: "/app",
            domain: Some("example.com"),
            samesite: SameSite::None,
            secure: true,
        };
        assert_eq!(
            set_cookie("sid", "", &attrs, true),
            "sid=; Path=/app; Domain=example.com; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:01 GMT; HttpOnly; Secure; SameSite=None"
        );
        let strict = Attributes {
            samesite: SameSite::Strict,
            ..attrs
        };
        assert!(set_cookie("a", "b", &strict, false).ends_with("; Secure; SameSite=Strict"));
    }
}
