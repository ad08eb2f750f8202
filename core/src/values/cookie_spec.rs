//! `paranoid_cookie` arguments and cookie names.

use super::ValueError;

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
pub fn validate_cookie_name(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::EmptyCookieName);
    }
    if !s.bytes().all(is_tchar) {
        return Err(ValueError::InvalidCookieName { name: s.to_owned() });
    }
    if s.len() > MAX_COOKIE_NAME {
        return Err(ValueError::CookieNameTooLong {
            name: s.to_owned(),
            max: MAX_COOKIE_NAME,
        });
    }
    Ok(())
}

/// `paranoid_secure_cookie NAME`: a cookie name that may carry its own
/// `__Secure-` or `__Host-` prefix. The prefix must be spelled exactly so
/// (browsers match prefixes ignoring case, so a name like `__secure-k`
/// would be prefixed for some and not for others) and be followed by
/// something.
pub fn validate_secure_cookie_name(s: &str) -> Result<(), ValueError> {
    validate_cookie_name(s)?;
    for p in [CookiePrefix::Host, CookiePrefix::Secure] {
        if !starts_with_ignore_case(s, p.as_str()) {
            continue;
        }
        if !s.starts_with(p.as_str()) {
            return Err(ValueError::PrefixMisspelled {
                name: s.to_owned(),
                prefix: p,
            });
        }
        if s.len() == p.as_str().len() {
            return Err(ValueError::NothingAfterPrefix { name: s.to_owned() });
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
pub fn parse_cookie_spec(args: &[&str]) -> Result<CookieSpec, ValueError> {
    let Some((name, attrs)) = args.split_first() else {
        return Err(ValueError::MissingCookieName);
    };
    validate_cookie_name(name)?;
    for p in [CookiePrefix::Host, CookiePrefix::Secure] {
        if starts_with_ignore_case(name, p.as_str()) {
            return Err(ValueError::PrefixInName {
                name: (*name).to_owned(),
                prefix: p,
            });
        }
    }

    let mut spec = CookieSpec {
        name: name.to_string(),
        ..CookieSpec::default()
    };
    let (mut path, mut domain, mut samesite, mut prefix) = (None, None, None, None);

    for attr in attrs {
        let unknown = || ValueError::UnknownAttribute {
            attr: (*attr).to_owned(),
        };
        let Some((key, value)) = attr.split_once('=') else {
            return Err(unknown());
        };
        let slot_taken = match key {
            "path" => path.is_some(),
            "domain" => domain.is_some(),
            "samesite" => samesite.is_some(),
            "prefix" => prefix.is_some(),
            _ => return Err(unknown()),
        };
        if slot_taken {
            return Err(ValueError::DuplicateAttribute {
                attr: (*attr).to_owned(),
            });
        }
        if value.is_empty() {
            return Err(ValueError::EmptyAttribute {
                attr: (*attr).to_owned(),
            });
        }
        match key {
            "path" => {
                if !valid_cookie_path(value) {
                    return Err(ValueError::InvalidPath {
                        path: value.to_owned(),
                    });
                }
                path = Some(value.to_string());
            }
            "domain" => {
                if !valid_cookie_domain(value) {
                    return Err(ValueError::InvalidDomain {
                        domain: value.to_owned(),
                    });
                }
                domain = Some(value.to_string());
            }
            "samesite" => {
                samesite = Some(match value {
                    "strict" => SameSite::Strict,
                    "lax" => SameSite::Lax,
                    "none" => SameSite::None,
                    _ => {
                        return Err(ValueError::InvalidSameSite {
                            value: value.to_owned(),
                        })
                    }
                });
            }
            _ => {
                prefix = Some(match value {
                    "__Host-" => CookiePrefix::Host,
                    "__Secure-" => CookiePrefix::Secure,
                    _ => {
                        return Err(ValueError::InvalidPrefix {
                            value: value.to_owned(),
                        })
                    }
                });
            }
        }
    }

    if prefix == Some(CookiePrefix::Host) {
        if let Some(d) = &domain {
            return Err(ValueError::HostPrefixWithDomain { domain: d.clone() });
        }
        if let Some(p) = path.as_deref().filter(|p| *p != "/") {
            return Err(ValueError::HostPrefixWithPath { path: p.to_owned() });
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
