//! `paranoid_session_control_header` and `paranoid_user_max_sessions`:
//! how the application drives its sessions (see [`crate::control`]).

use super::cookie_spec::is_tchar;
use super::{parse_digits, ValueError};
use crate::user_index::MAX_USER_SESSIONS;

/// Longest name `paranoid_session_control_header` takes.
pub const MAX_HEADER_NAME: usize = 64;

/// `paranoid_session_control_header NAME|off`: `off` turns the header off
/// (`None`); otherwise an HTTP field name (RFC 9110 token: letters, digits
/// and ``!#$%&'*+-.^_`|~``) of 1 to 64 bytes, kept as written (the edge
/// compares it ignoring case, as HTTP does). `OFF`, `Off` and the like are
/// refused rather than taken as a header nobody would mean.
pub fn parse_control_header(s: &str) -> Result<Option<String>, ValueError> {
    if s == "off" {
        return Ok(None);
    }
    if s.eq_ignore_ascii_case("off") {
        return Err(ValueError::AmbiguousOff {
            value: s.to_owned(),
        });
    }
    if s.is_empty() {
        return Err(ValueError::EmptyHeaderName);
    }
    if !s.bytes().all(is_tchar) {
        return Err(ValueError::InvalidHeaderName { name: s.to_owned() });
    }
    if s.len() > MAX_HEADER_NAME {
        return Err(ValueError::HeaderNameTooLong {
            name: s.to_owned(),
            max: MAX_HEADER_NAME,
        });
    }
    Ok(Some(s.to_owned()))
}

/// `paranoid_user_max_sessions N|off`: `off` (`None`, no cap but the
/// index's own [`MAX_USER_SESSIONS`]) or a decimal number from 1 to 64.
pub fn parse_user_max_sessions(s: &str) -> Result<Option<u32>, ValueError> {
    if s == "off" {
        return Ok(None);
    }
    let max = MAX_USER_SESSIONS as u64;
    parse_digits(s)
        .filter(|n| (1..=max).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| ValueError::NotOffOrNumber {
            value: s.to_owned(),
            min: 1,
            max,
        })
}
