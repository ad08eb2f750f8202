//! `paranoid_session_store` servers and the memcached key prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::cookie_spec::{starts_with_ignore_case, valid_hostname};
use super::{parse_digits, quote, ValueError};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreServer {
    /// As written in the configuration.
    pub name: String,
    pub addr: StoreAddr,
}

fn parse_port(port: &str, s: &str) -> Result<u16, String> {
    parse_digits(port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid port in {}: must be between 1 and 65535", quote(s)))
}

/// One server of `paranoid_session_store`: `unix:/abs/path` (the `unix:`
/// prefix is case-insensitive, as in nginx), `IPv4:port`, `[IPv6]:port` or
/// `hostname:port`. Host names are resolved now; the first address is used.
pub fn parse_store_server(s: &str) -> Result<StoreServer, String> {
    let tcp = |addr: SocketAddr| {
        Ok(StoreServer {
            name: s.to_string(),
            addr: StoreAddr::Tcp(addr),
        })
    };

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
        return Ok(StoreServer {
            name: s.to_string(),
            addr: StoreAddr::Unix(PathBuf::from(path)),
        });
    }

    if s.is_empty() {
        return Err(format!("invalid server address {}", quote(s)));
    }

    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("invalid IPv6 address in {}", quote(s)));
        };
        let ip: Ipv6Addr = host
            .parse()
            .map_err(|_| format!("invalid IPv6 address in {}", quote(s)))?;
        if after.is_empty() {
            return Err(format!("no port in {}", quote(s)));
        }
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("invalid server address {}", quote(s)));
        };
        let port = parse_port(port, s)?;
        return tcp(SocketAddr::new(IpAddr::V6(ip), port));
    }

    if s.bytes().filter(|b| *b == b':').count() > 1 {
        return Err(format!(
            "invalid server address {}: put IPv6 addresses in brackets, e.g. \"[::1]:11211\"",
            quote(s)
        ));
    }

    let Some((host, port)) = s.split_once(':') else {
        return Err(format!("no port in {}", quote(s)));
    };
    if host.is_empty() {
        return Err(format!("no host in {}", quote(s)));
    }
    let port = parse_port(port, s)?;

    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Never hand numeric forms such as "010.0.0.1" or "1234" to the
        // resolver, which may read them as octal or 32-bit numbers.
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| format!("invalid IPv4 address in {}", quote(s)))?;
        return tcp(SocketAddr::new(IpAddr::V4(ip), port));
    }

    if !valid_hostname(host) {
        return Err(format!("invalid host in {}", quote(s)));
    }
    match (host, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => tcp(addr),
        _ => Err(format!("host not found in {}", quote(s))),
    }
}
