//! Pure parsing and validation of directive values (std only, no nginx
//! types), so that every accepted form and every error can be unit tested.
//!
//! Every error is a [`ValueError`], whose text is one short sentence,
//! starting in lowercase, that nginx prints after the directive name, e.g.
//! `paranoid_nonce_window: "-1" is not a number between 0 and 16`.
//! Offending values are quoted with [`quote`], which escapes control
//! characters (including NUL) so the message is always printable and can
//! become a C string.

use crate::secret::SecretKey;
use crate::time::{DAY, HOUR, MINUTE, MONTH, SECOND, WEEK, YEAR};

/// Largest time accepted, like nginx's `NGX_MAX_INT_T_VALUE` on 64-bit.
const MAX_TIME_MS: u64 = i64::MAX as u64;

/// `"value"` with `"`, `\` and control characters escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' || c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// "a", "a" or "b", "a", "b" or "c"
pub(crate) fn list_choices(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| quote(c)).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {}", rest.join(", "), last),
    }
}

/// Decimal digits only (at least one), checked against overflow.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

// ---------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------

/// Unit groups in the order nginx requires them; a bare number is seconds.
const RANK_SEC: u8 = 6;

fn parse_time_inner(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_rank: Option<u8> = None;

    if b.is_empty() {
        return None;
    }

    while i < b.len() {
        let start = i;
        let mut value: u64 = 0;
        while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            i += 1;
        }
        if i == start {
            // A unit without a number, a leading space, a sign, ...
            return None;
        }

        let (rank, scale, len, bare) = match b.get(i) {
            None | Some(b' ') => (RANK_SEC, SECOND, 0, true),
            Some(b'y') => (0, YEAR, 1, false),
            Some(b'M') => (1, MONTH, 1, false),
            Some(b'w') => (2, WEEK, 1, false),
            Some(b'd') => (3, DAY, 1, false),
            Some(b'h') => (4, HOUR, 1, false),
            Some(b'm') if b.get(i + 1) == Some(&b's') => (7, 1, 2, false),
            Some(b'm') => (5, MINUTE, 1, false),
            Some(b's') => (RANK_SEC, SECOND, 1, false),
            Some(_) => return None,
        };
        i += len;

        if last_rank.is_some_and(|prev| rank <= prev) {
            // Repeated or out of order unit.
            return None;
        }
        last_rank = Some(rank);

        total = total.checked_add(value.checked_mul(scale)?)?;
        if total > MAX_TIME_MS {
            return None;
        }

        let spaces = i;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        if i > spaces && i == b.len() {
            // Trailing spaces.
            return None;
        }
        if bare && i < b.len() {
            // A bare number (seconds) must be the last group.
            return None;
        }
    }

    Some(total)
}

/// nginx time syntax: one or more `<number><unit>` groups with optional
/// spaces between groups; units `y` (365 days), `M` (30 days), `w`, `d`,
/// `h`, `m`, `s`, `ms`; a bare number means seconds and may only be the
/// last group. As in nginx's `ngx_parse_time`, units must appear in
/// decreasing order, each at most once ("1h30m" and "1d 12h" are valid,
/// "1s1s" and "1m1h" are not), and a unit must directly follow its number
/// ("1 s" is invalid). Stricter than nginx: every unit needs a number
/// ("1hs"), a bare number cannot follow `s`/`ms` ("1s 5"), and leading or
/// trailing spaces are rejected. Unlike nginx's millisecond parser, `y`
/// and `M` are accepted. Empty input, signs, decimals, other characters
/// and values above `i64::MAX` milliseconds are errors.
pub fn parse_time_ms(s: &str) -> Result<u64, ValueError> {
    parse_time_inner(s).ok_or_else(|| ValueError::InvalidTime {
        value: s.to_owned(),
    })
}

/// Milliseconds in nginx notation, e.g. "0", "500ms", "1m30s", "1d".
fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, scale) in [
        ("d", DAY),
        ("h", HOUR),
        ("m", MINUTE),
        ("s", SECOND),
        ("ms", 1),
    ] {
        let n = rest / scale;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            rest %= scale;
        }
    }
    out
}

/// A time within `[min_ms, max_ms]`, e.g.
/// `"0" is out of range: must be between 1ms and 1m`.
pub fn parse_time_in(s: &str, min_ms: u64, max_ms: u64) -> Result<u64, ValueError> {
    let ms = parse_time_ms(s)?;
    if ms >= min_ms && ms <= max_ms {
        return Ok(ms);
    }
    Err(ValueError::TimeOutOfRange {
        value: s.to_owned(),
        min_ms,
        max_ms,
    })
}

/// `"off"` -> `None`, otherwise [`parse_time_in`].
pub fn parse_time_or_off(s: &str, min_ms: u64, max_ms: u64) -> Result<Option<u64>, ValueError> {
    if s == "off" {
        return Ok(None);
    }
    parse_time_in(s, min_ms, max_ms).map(Some)
}

// ---------------------------------------------------------------------------
// Flags, numbers, choices
// ---------------------------------------------------------------------------

/// `"on"` / `"off"` in any ASCII case, like nginx flags
/// (`ngx_conf_set_flag_slot` compares with `ngx_strcasecmp`): `On` and
/// `OFF` are accepted, nothing else (no spaces, `yes`, `1`).
pub fn parse_flag(s: &str) -> Result<bool, ValueError> {
    if s.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(ValueError::NotAFlag {
            value: s.to_owned(),
        })
    }
}

/// A decimal unsigned integer within `[min, max]`: digits only (leading
/// zeros allowed, as in nginx), no sign, spaces or hex, no overflow.
pub fn parse_uint_in(s: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    match parse_digits(s) {
        Some(n) if n >= min && n <= max => Ok(n),
        _ => Err(ValueError::NotANumber {
            value: s.to_owned(),
            min,
            max,
        }),
    }
}

/// One of `choices` (exact match); returns its index.
pub fn parse_choice(s: &str, choices: &[&str]) -> Result<usize, ValueError> {
    choices
        .iter()
        .position(|c| *c == s)
        .ok_or_else(|| ValueError::NotAChoice {
            value: s.to_owned(),
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        })
}

// ---------------------------------------------------------------------------
// Fingerprint, secret
// ---------------------------------------------------------------------------

/// `paranoid_fingerprint_ip_prefix V4 V6`: V4 in 0..=32, V6 in 0..=128.
pub fn parse_ip_prefix(v4: &str, v6: &str) -> Result<(u8, u8), ValueError> {
    let bits = |s: &str, family: &'static str, max: u8| {
        parse_digits(s)
            .filter(|n| *n <= u64::from(max))
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| ValueError::InvalidPrefixLength {
                family,
                value: s.to_owned(),
                max,
            })
    };
    Ok((bits(v4, "IPv4", 32)?, bits(v6, "IPv6", 128)?))
}

/// Secret file contents -> key: trailing ASCII whitespace is ignored, then
/// 32..=4096 bytes are required; other bytes are taken as they are (binary
/// allowed). Nothing of `bytes` is copied but into the key.
pub fn parse_secret(bytes: &[u8]) -> Result<SecretKey, ValueError> {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let key = bytes.get(..end).unwrap_or(&[]);
    Ok(SecretKey::new(key)?)
}

mod application;
mod cookie_spec;
mod error;
mod store;

pub use application::*;
pub use cookie_spec::*;
pub use error::ValueError;
pub use store::*;

#[cfg(test)]
mod tests;
