//! `paranoid_session_store` servers and the memcached key prefix.

use std::net::Ipv4Addr;

use super::cookie_spec::{starts_with_ignore_case, valid_hostname};
use super::{quote, ValueError};

/// `sizeof(sun_path) - 1` on Linux.
const MAX_UNIX_PATH: usize = 107;

/// Longest memcached key prefix (250-byte key limit, 64 hex chars appended).
const MAX_KEY_PREFIX: usize = 100;

// ---------------------------------------------------------------------------
// Memcached
// ---------------------------------------------------------------------------

/// Memcached key prefix: 0..=100 bytes of printable ASCII, no spaces or
/// control characters.
pub fn validate_key_prefix(s: &str) -> Result<(), ValueError> {
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValueError::InvalidKeyPrefix {
            prefix: s.to_owned(),
        });
    }
    if s.len() > MAX_KEY_PREFIX {
        return Err(ValueError::KeyPrefixTooLong {
            prefix: s.to_owned(),
            max: MAX_KEY_PREFIX,
        });
    }
    Ok(())
}

/// The module's own rules for one `paranoid_session_store` server, on top
/// of nginx's: the edge parses the address with nginx's `ngx_parse_url` at
/// configuration time (resolving a host name there, as nginx's upstream
/// `server` does), and this keeps it to the three forms the README
/// documents, with messages that say what is wrong:
///
/// - `unix:/path` (the prefix in any case, as in nginx): the path must be
///   absolute (nginx would take a relative one from its working directory)
///   and fit `sun_path`;
/// - `[IPv6]:port`: left to nginx;
/// - `host:port`: one colon (a bare IPv6 address gets a hint); a host of
///   digits and dots must be a dotted quad without leading zeros (a
///   resolver reads `010.0.0.1` as octal and `1234` as a 32-bit number),
///   any other host a valid host name.
///
/// Ports, brackets and the presence of a host and a port are nginx's to
/// check. The server's name for logs and routing is the text as written.
pub fn validate_store_server(s: &str) -> Result<(), String> {
    if starts_with_ignore_case(s, "unix:") {
        let path = s.get(5..).unwrap_or("");
        if !path.starts_with('/') {
            return Err(format!("unix socket path in {} must be absolute", quote(s)));
        }
        if path.contains('\0') {
            return Err(format!("unix socket path in {} contains NUL", quote(s)));
        }
        if path.len() > MAX_UNIX_PATH {
            return Err(format!(
                "unix socket path in {} is too long: {} bytes, at most {} are allowed",
                quote(s),
                path.len(),
                MAX_UNIX_PATH
            ));
        }
        return Ok(());
    }
    if s.starts_with('[') {
        return Ok(());
    }
    if s.bytes().filter(|b| *b == b':').count() > 1 {
        return Err(format!(
            "invalid server address {}: put IPv6 addresses in brackets, e.g. \"[::1]:11211\"",
            quote(s)
        ));
    }
    let host = s.split_once(':').map_or(s, |(host, _)| host);
    if host.is_empty() {
        return Ok(()); // nginx: "no host"
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if host.parse::<Ipv4Addr>().is_err() {
            return Err(format!("invalid IPv4 address in {}", quote(s)));
        }
    } else if !valid_hostname(host) {
        return Err(format!("invalid host in {}", quote(s)));
    }
    Ok(())
}
