//! `paranoid_cookie` arguments and cookie names.

use super::quote;

/// Longest cookie name accepted by `validate_cookie_name`.
const MAX_COOKIE_NAME: usize = 64;

// ---------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookiePrefix {
    /// `__Host-`
    Host,
    /// `__Secure-`
    Secure,
}

impl CookiePrefix {
    pub fn as_str(&self) -> &'static str {
        match self {
            CookiePrefix::Host => "__Host-",
            CookiePrefix::Secure => "__Secure-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    pub name: String,
    pub path: String,
    pub domain: Option<String>,
    pub samesite: SameSite,
    pub prefix: Option<CookiePrefix>,
}

impl Default for CookieSpec {
    fn default() -> Self {
        CookieSpec {
            name: "sessionid".to_string(),
            path: "/".to_string(),
            domain: None,
            samesite: SameSite::Lax,
            prefix: None,
        }
    }
}

/// RFC 7230 tchar.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 cookie-name = token: 1..=64 characters of ALPHA, DIGIT and
/// ``!#$%&'*+-.^_`|~``.
pub fn validate_cookie_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("cookie name must not be empty".to_string());
    }
    if !s.bytes().all(is_tchar) {
        return Err(format!(
            "invalid cookie name {}: only letters, digits and !#$%&'*+-.^_`|~ are allowed",
            quote(s)
        ));
    }
    if s.len() > MAX_COOKIE_NAME {
        return Err(format!(
            "cookie name {} is too long: {} characters, at most {} are allowed",
            quote(s),
            s.len(),
            MAX_COOKIE_NAME
        ));
    }
    Ok(())
}

/// `paranoid_secure_cookie NAME`: a cookie name that may carry its own
/// `__Secure-` or `__Host-` prefix. The prefix must be spelled exactly so
/// (browsers match prefixes ignoring case, so a name like `__secure-k`
/// would be prefixed for some and not for others) and be followed by
/// something.
pub fn validate_secure_cookie_name(s: &str) -> Result<(), String> {
    validate_cookie_name(s)?;
    for p in [CookiePrefix::Host, CookiePrefix::Secure] {
        if !starts_with_ignore_case(s, p.as_str()) {
            continue;
        }
        if !s.starts_with(p.as_str()) {
            return Err(format!(
                "cookie name {} must spell its prefix exactly \"{}\"",
                quote(s),
                p.as_str()
            ));
        }
        if s.len() == p.as_str().len() {
            return Err(format!(
                "cookie name {} has nothing after its prefix",
                quote(s)
            ));
        }
    }
    Ok(())
}

/// The `__Host-` or `__Secure-` prefix a cookie name starts with (exact
/// spelling) and the rest of the name.
pub fn split_cookie_prefix(name: &str) -> (Option<CookiePrefix>, &str) {
    for p in [CookiePrefix::Host, CookiePrefix::Secure] {
        if let Some(rest) = name.strip_prefix(p.as_str()) {
            return (Some(p), rest);
        }
    }
    (None, name)
}

/// Whether `s` starts with `prefix`, ignoring ASCII case (browsers match
/// cookie prefixes case-insensitively).
pub(super) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Cookie `Path`: starts with '/', visible ASCII except ';' and ','.
fn valid_cookie_path(p: &str) -> bool {
    p.starts_with('/')
        && p.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

/// Hostname: labels of 1..=63 letters, digits and '-' (not at either end
/// of a label), separated by '.', at most 253 characters.
pub(super) fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Cookie `Domain`: a hostname with an optional single leading '.'.
fn valid_cookie_domain(d: &str) -> bool {
    valid_hostname(d.strip_prefix('.').unwrap_or(d))
}

/// Arguments of `paranoid_cookie NAME [path=P] [domain=D]
/// [samesite=strict|lax|none] [prefix=__Host-|__Secure-]`, `args[0]` being
/// NAME. Attribute names and the samesite/prefix values are exact
/// (case-sensitive). The NAME must not carry a `__Host-`/`__Secure-`
/// prefix itself (any case): use `prefix=`.
pub fn parse_cookie_spec(args: &[&str]) -> Result<CookieSpec, String> {
    let Some((name, attrs)) = args.split_first() else {
        return Err("cookie name is missing".to_string());
    };
    validate_cookie_name(name)?;
    for p in [CookiePrefix::Host, CookiePrefix::Secure] {
        if starts_with_ignore_case(name, p.as_str()) {
            return Err(format!(
                "cookie name {} must not start with \"{}\", use prefix={} instead",
                quote(name),
                p.as_str(),
                p.as_str()
            ));
        }
    }

    let mut spec = CookieSpec {
        name: name.to_string(),
        ..CookieSpec::default()
    };
    let (mut path, mut domain, mut samesite, mut prefix) = (None, None, None, None);

    for attr in attrs {
        let Some((key, value)) = attr.split_once('=') else {
            return Err(format!(
                "unknown attribute {}, expected path=, domain=, samesite= or prefix=",
                quote(attr)
            ));
        };
        let slot_taken = match key {
            "path" => path.is_some(),
            "domain" => domain.is_some(),
            "samesite" => samesite.is_some(),
            "prefix" => prefix.is_some(),
            _ => {
                return Err(format!(
                    "unknown attribute {}, expected path=, domain=, samesite= or prefix=",
                    quote(attr)
                ))
            }
        };
        if slot_taken {
            return Err(format!("duplicate attribute {}", quote(attr)));
        }
        if value.is_empty() {
            return Err(format!("empty value in {}", quote(attr)));
        }
        match key {
            "path" => {
                if !valid_cookie_path(value) {
                    return Err(format!(
                        "invalid path {}: must start with \"/\" and contain only visible \
                         ASCII characters except \";\" and \",\"",
                        quote(value)
                    ));
                }
                path = Some(value.to_string());
            }
            "domain" => {
                if !valid_cookie_domain(value) {
                    return Err(format!(
                        "invalid domain {}: must be a host name without port",
                        quote(value)
                    ));
                }
                domain = Some(value.to_string());
            }
            "samesite" => {
                samesite = Some(match value {
                    "strict" => SameSite::Strict,
                    "lax" => SameSite::Lax,
                    "none" => SameSite::None,
                    _ => {
                        return Err(format!(
                            "invalid samesite {}, expected \"strict\", \"lax\" or \"none\"",
                            quote(value)
                        ))
                    }
                });
            }
            _ => {
                prefix = Some(match value {
                    "__Host-" => CookiePrefix::Host,
                    "__Secure-" => CookiePrefix::Secure,
                    _ => {
                        return Err(format!(
                            "invalid prefix {}, expected \"__Host-\" or \"__Secure-\"",
                            quote(value)
                        ))
                    }
                });
            }
        }
    }

    if prefix == Some(CookiePrefix::Host) {
        if let Some(d) = &domain {
            return Err(format!(
                "prefix=__Host- conflicts with domain={}: __Host- cookies must have path=/ \
                 and no domain",
                quote(d)
            ));
        }
        if let Some(p) = path.as_deref().filter(|p| *p != "/") {
            return Err(format!(
                "prefix=__Host- conflicts with path={}: __Host- cookies must have path=/ \
                 and no domain",
                quote(p)
            ));
        }
    }

    if let Some(p) = path {
        spec.path = p;
    }
    spec.domain = domain;
    if let Some(s) = samesite {
        spec.samesite = s;
    }
    spec.prefix = prefix;
    Ok(spec)
}
