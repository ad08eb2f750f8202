//! The fingerprint a session is bound to: a hash of the configured values
//! (client address, User-Agent, any variable). Values that are IP addresses
//! are compared on a prefix only (`paranoid_fingerprint_ip_prefix`).
//! IPv4-mapped IPv6 addresses are IPv4 addresses (see [`normalize`]).

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
///
/// An IPv4-mapped address (`::ffff:a.b.c.d`) is how a dual-stack listener
/// (`listen [::]:80 ipv6only=off`) shows an IPv4 client, so it is taken as
/// that IPv4 address: cut to the `v4` prefix, and the same as the plain form
/// (masked with the `v6` prefix, every IPv4 client would share one network).
/// Other IPv6 forms that embed an IPv4 address stay IPv6: IPv4-compatible
/// `::a.b.c.d` is deprecated (RFC 4291 2.5.5.1), never what a socket
/// reports, and covers real IPv6 addresses such as `::1`; IPv4-translated
/// `::ffff:0:a.b.c.d` (RFC 2765) and NAT64 `64:ff9b::/96` are addresses of
/// IPv6 hosts, which nginx only sees as such.
fn normalize(value: &[u8], v4: u8, v6: u8) -> Vec<u8> {
    let ip = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .map(|ip| match ip {
            IpAddr::V6(addr) => addr.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            ip => ip,
        });
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
    fn ipv4_mapped_is_ipv4() {
        // The same address, mapped or not: the same fingerprint.
        for prefix in [0, 24, 32] {
            assert_eq!(
                fp(&["::ffff:10.0.0.1", "ua"], prefix, 64),
                fp(&["10.0.0.1", "ua"], prefix, 64)
            );
        }
        assert_eq!(fp(&["::FFFF:a00:1"], 24, 64), fp(&["10.0.0.1"], 24, 64));
        // Compared on the v4 prefix, not on the v6 one.
        assert_eq!(
            fp(&["::ffff:10.0.0.1"], 24, 64),
            fp(&["::ffff:10.0.0.200"], 24, 64)
        );
        assert_eq!(fp(&["::ffff:10.0.0.1"], 24, 64), fp(&["10.0.0.7"], 24, 64));
        assert_ne!(
            fp(&["::ffff:10.0.0.1"], 24, 64),
            fp(&["::ffff:10.0.1.1"], 24, 64)
        );
        assert_ne!(
            fp(&["::ffff:10.0.0.1"], 24, 0),
            fp(&["::ffff:192.168.0.1"], 24, 0)
        );
        assert_eq!(
            normalize(b"::ffff:10.0.0.7", 24, 64),
            b"10.0.0.0/24".to_vec()
        );
    }

    #[test]
    fn other_embedded_ipv4_forms_stay_ipv6() {
        assert_eq!(
            normalize(b"::10.0.0.7", 24, 64),
            b"::/64".to_vec(),
            "IPv4-compatible"
        );
        assert_eq!(
            normalize(b"::ffff:0:10.0.0.7", 24, 64),
            b"::/64".to_vec(),
            "IPv4-translated"
        );
        assert_eq!(
            normalize(b"64:ff9b::10.0.0.7", 24, 64),
            b"64:ff9b::/64".to_vec(),
            "NAT64"
        );
        assert_eq!(normalize(b"::1", 24, 128), b"::1/128".to_vec());
        assert_ne!(fp(&["::10.0.0.1"], 24, 128), fp(&["10.0.0.1"], 24, 128));
        assert_ne!(
            fp(&["::ffff:0:10.0.0.1"], 24, 128),
            fp(&["10.0.0.1"], 24, 128)
        );
        // A real IPv6 address keeps the v6 prefix.
        assert_eq!(
            fp(&["2001:db8::1"], 24, 64),
            fp(&["2001:db8::ffff:a00:1"], 24, 64)
        );
    }

    #[test]
    fn non_ip_values_are_kept_verbatim() {
        assert_ne!(fp(&["10.0.0.1x"], 24, 64), fp(&["10.0.0.2x"], 24, 64));
        assert_eq!(normalize(b"\xff\x00", 24, 64), b"\xff\x00".to_vec());
        assert_eq!(normalize(b"10.0.0.7", 24, 64), b"10.0.0.0/24".to_vec());
    }
}
