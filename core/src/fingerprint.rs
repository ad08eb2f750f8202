//! The fingerprint a session is bound to: a hash of the configured values
//! (client address, User-Agent, any variable). Values that are IP addresses
//! are compared on a prefix only (`paranoid_fingerprint_ip_prefix`).

use std::net::IpAddr;

use crate::record::Hash;
use crate::secret::Hasher;

/// Hash of `values` in order, IP addresses cut to `v4`/`v6` prefix bits.
pub fn fingerprint(hasher: &Hasher<'_>, values: &[&[u8]], v4: u8, v6: u8) -> Hash {
    let masked: Vec<Vec<u8>> = values.iter().map(|v| normalize(v, v4, v6)).collect();
    let parts: Vec<&[u8]> = masked.iter().map(Vec::as_slice).collect();
    hasher.hash("fingerprint", &parts)
}

/// An IP address becomes its masked network in text form; anything else is
/// kept as it is.
fn normalize(value: &[u8], v4: u8, v6: u8) -> Vec<u8> {
    let ip = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<IpAddr>().ok());
    match ip {
        Some(IpAddr::V4(ip)) => {
            let bits = u32::from(ip) & mask32(v4);
            format!("{}/{v4}", std::net::Ipv4Addr::from(bits)).into_bytes()
        }
        Some(IpAddr::V6(ip)) => {
            let bits = u128::from(ip) & mask128(v6);
            format!("{}/{v6}", std::net::Ipv6Addr::from(bits)).into_bytes()
        }
        None => value.to_vec(),
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(values: &[&str], v4: u8, v6: u8) -> Hash {
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        fingerprint(&Hasher::new(None), &values, v4, v6)
    }

    #[test]
    fn same_values_same_hash() {
        assert_eq!(
            fp(&["1.2.3.4", "curl"], 32, 128),
            fp(&["1.2.3.4", "curl"], 32, 128)
        );
        assert_ne!(
            fp(&["1.2.3.4", "curl"], 32, 128),
            fp(&["1.2.3.4", "wget"], 32, 128)
        );
        assert_ne!(
            fp(&["1.2.3.4", "curl"], 32, 128),
            fp(&["1.2.3.5", "curl"], 32, 128)
        );
        assert_ne!(fp(&["a", "bc"], 32, 128), fp(&["ab", "c"], 32, 128));
    }

    #[test]
    fn ipv4_prefix() {
        assert_eq!(fp(&["10.0.0.1"], 24, 128), fp(&["10.0.0.99"], 24, 128));
        assert_ne!(fp(&["10.0.0.1"], 24, 128), fp(&["10.0.1.1"], 24, 128));
        assert_eq!(fp(&["10.0.0.1"], 0, 128), fp(&["192.168.1.1"], 0, 128));
        assert_ne!(fp(&["10.0.0.1"], 32, 128), fp(&["10.0.0.2"], 32, 128));
    }

    #[test]
    fn ipv6_prefix() {
        assert_eq!(
            fp(&["2001:db8::1"], 32, 64),
            fp(&["2001:db8::ffff"], 32, 64)
        );
        assert_ne!(
            fp(&["2001:db8::1"], 32, 64),
            fp(&["2001:db8:0:1::1"], 32, 64)
        );
        assert_ne!(fp(&["2001:db8::1"], 32, 128), fp(&["2001:db8::2"], 32, 128));
        assert_eq!(fp(&["::1"], 32, 0), fp(&["2001:db8::2"], 32, 0));
    }

    #[test]
    fn non_ip_values_are_kept_verbatim() {
        assert_ne!(fp(&["10.0.0.1x"], 24, 64), fp(&["10.0.0.2x"], 24, 64));
        assert_eq!(normalize(b"\xff\x00", 24, 64), b"\xff\x00".to_vec());
        assert_eq!(normalize(b"10.0.0.7", 24, 64), b"10.0.0.0/24".to_vec());
    }
}
