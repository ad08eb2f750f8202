//! Why a directive value is refused: one error type for every parser of
//! `values`. Its text is the sentence nginx prints after
//! `"<directive>" directive is invalid: `, with the offending value quoted
//! by [`quote`] (control characters escaped, so it is always printable).

use super::cookie_spec::CookiePrefix;
use super::{format_ms, list_choices, quote, MAX_TIME_MS};
use crate::secret::KeyLengthError;

/// A directive value that does not parse or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not nginx time syntax.
    #[error("invalid time {}", quote(.value))]
    InvalidTime { value: String },
    /// A time outside what the directive allows.
    #[error("{} is out of range: must be {}", quote(.value), expected_time(*.min_ms, *.max_ms))]
    TimeOutOfRange {
        value: String,
        min_ms: u64,
        max_ms: u64,
    },
    /// Neither `on` nor `off`.
    #[error("{} is not \"on\" or \"off\"", quote(.value))]
    NotAFlag { value: String },
    /// Not a decimal number, or outside `min..=max`.
    #[error("{} is not a number {}", quote(.value), expected_number(*.min, *.max))]
    NotANumber { value: String, min: u64, max: u64 },
    /// None of the words the directive takes.
    #[error("{} is invalid{}", quote(.value), expected_choice(.choices))]
    NotAChoice { value: String, choices: Vec<String> },
    /// `paranoid_fingerprint_ip_prefix`: not a prefix length of `family`.
    #[error(
        "invalid {family} prefix length {}: must be a number between 0 and {max}",
        quote(.value)
    )]
    InvalidPrefixLength {
        family: &'static str,
        value: String,
        max: u8,
    },
    /// The secret file's key is too short or too long.
    #[error(transparent)]
    Secret(#[from] KeyLengthError),

    /// `paranoid_cookie` without a name.
    #[error("cookie name is missing")]
    MissingCookieName,
    /// An empty cookie name.
    #[error("cookie name must not be empty")]
    EmptyCookieName,
    /// A cookie name with a character outside RFC 6265's token.
    #[error(
        "invalid cookie name {}: only letters, digits and !#$%&'*+-.^_`|~ are allowed",
        quote(.name)
    )]
    InvalidCookieName { name: String },
    /// A cookie name longer than `max` characters.
    #[error(
        "cookie name {} is too long: {} characters, at most {max} are allowed",
        quote(.name),
        .name.len()
    )]
    CookieNameTooLong { name: String, max: usize },
    /// `__secure-x`: a prefix browsers would read differently.
    #[error(
        "cookie name {} must spell its prefix exactly \"{}\"",
        quote(.name),
        .prefix.as_str()
    )]
    PrefixMisspelled { name: String, prefix: CookiePrefix },
    /// `__Secure-` alone.
    #[error("cookie name {} has nothing after its prefix", quote(.name))]
    NothingAfterPrefix { name: String },
    /// `paranoid_cookie __Host-x`: the prefix belongs in `prefix=`.
    #[error(
        "cookie name {} must not start with \"{p}\", use prefix={p} instead",
        quote(.name),
        p = .prefix.as_str()
    )]
    PrefixInName { name: String, prefix: CookiePrefix },
    /// A `paranoid_cookie` argument that is no known attribute.
    #[error(
        "unknown attribute {}, expected path=, domain=, samesite= or prefix=",
        quote(.attr)
    )]
    UnknownAttribute { attr: String },
    /// An attribute given twice.
    #[error("duplicate attribute {}", quote(.attr))]
    DuplicateAttribute { attr: String },
    /// `path=` and the like without a value.
    #[error("empty value in {}", quote(.attr))]
    EmptyAttribute { attr: String },
    /// A cookie path a browser would not take.
    #[error(
        "invalid path {}: must start with \"/\" and contain only visible ASCII characters \
         except \";\" and \",\"",
        quote(.path)
    )]
    InvalidPath { path: String },
    /// A cookie domain that is not a host name.
    #[error("invalid domain {}: must be a host name without port", quote(.domain))]
    InvalidDomain { domain: String },
    /// `samesite=` other than strict, lax or none.
    #[error(
        "invalid samesite {}, expected \"strict\", \"lax\" or \"none\"",
        quote(.value)
    )]
    InvalidSameSite { value: String },
    /// `prefix=` other than `__Host-` or `__Secure-`.
    #[error(
        "invalid prefix {}, expected \"__Host-\" or \"__Secure-\"",
        quote(.value)
    )]
    InvalidPrefix { value: String },
    /// `prefix=__Host-` with a domain.
    #[error(
        "prefix=__Host- conflicts with domain={}: __Host- cookies must have path=/ and no domain",
        quote(.domain)
    )]
    HostPrefixWithDomain { domain: String },
    /// `prefix=__Host-` with a path other than `/`.
    #[error(
        "prefix=__Host- conflicts with path={}: __Host- cookies must have path=/ and no domain",
        quote(.path)
    )]
    HostPrefixWithPath { path: String },

    /// `paranoid_session_control_header OFF`: neither off nor a name one
    /// would mean.
    #[error(
        "{} is ambiguous: write \"off\" to turn the control header off",
        quote(.value)
    )]
    AmbiguousOff { value: String },
    /// An empty header name.
    #[error("header name must not be empty")]
    EmptyHeaderName,
    /// A header name with a character outside RFC 9110's token.
    #[error(
        "invalid header name {}: only letters, digits and !#$%&'*+-.^_`|~ are allowed",
        quote(.name)
    )]
    InvalidHeaderName { name: String },
    /// A header name longer than `max` bytes.
    #[error(
        "header name {} is too long: {} bytes, at most {max} are allowed",
        quote(.name),
        .name.len()
    )]
    HeaderNameTooLong { name: String, max: usize },
    /// Neither `off` nor a number in `min..=max`.
    #[error("{} is not \"off\" or a number between {min} and {max}", quote(.value))]
    NotOffOrNumber { value: String, min: u64, max: u64 },

    /// A memcached key prefix with a space, control or non-ASCII character.
    #[error(
        "invalid key prefix {}: only printable ASCII characters without spaces are allowed",
        quote(.prefix)
    )]
    InvalidKeyPrefix { prefix: String },
    /// A memcached key prefix longer than `max` bytes.
    #[error(
        "key prefix {} is too long: {} bytes, at most {max} are allowed",
        quote(.prefix),
        .prefix.len()
    )]
    KeyPrefixTooLong { prefix: String, max: usize },
}

/// "at most 1d", "at least 1s", "1s", "between 1ms and 1m".
fn expected_time(min_ms: u64, max_ms: u64) -> String {
    if min_ms == 0 {
        format!("at most {}", format_ms(max_ms))
    } else if max_ms >= MAX_TIME_MS {
        format!("at least {}", format_ms(min_ms))
    } else if min_ms == max_ms {
        format_ms(min_ms)
    } else {
        format!("between {} and {}", format_ms(min_ms), format_ms(max_ms))
    }
}

/// "between 0 and 16", "greater than or equal to 1".
fn expected_number(min: u64, max: u64) -> String {
    if max == u64::MAX {
        format!("greater than or equal to {min}")
    } else {
        format!("between {min} and {max}")
    }
}

/// "", ", expected \"a\" or \"b\"".
fn expected_choice(choices: &[String]) -> String {
    if choices.is_empty() {
        return String::new();
    }
    let choices: Vec<&str> = choices.iter().map(String::as_str).collect();
    format!(", expected {}", list_choices(&choices))
}
