//! The one parser inside fingerprinting: values that read as IP addresses
//! are cut to the configured prefix before hashing.

use std::net::{Ipv4Addr, Ipv6Addr};

use paranoid_core::fingerprint::fingerprint;
use paranoid_core::secret::Hasher;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::config;

fn fp(values: &[&[u8]], v4: u8, v6: u8) -> [u8; 32] {
    fingerprint(&Hasher::new(None), values, v4, v6)
}

proptest! {
    #![proptest_config(config(256))]

    /// Any values and any prefix lengths (even past 32 and 128): no panic.
    #[test]
    fn arbitrary_values(values in vec(vec(any::<u8>(), 0..48), 0..4), v4 in any::<u8>(), v6 in any::<u8>()) {
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let _ = fp(&values, v4, v6);
    }

    /// Two IPv4 addresses share a fingerprint exactly when they share the
    /// first `prefix` bits.
    #[test]
    fn ipv4_prefixes(a in any::<u32>(), b in any::<u32>(), prefix in 0u8..=32, ua in "[ -~]{0,20}") {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let (ta, tb) = (Ipv4Addr::from(a).to_string(), Ipv4Addr::from(b).to_string());
        let same = fp(&[ta.as_bytes(), ua.as_bytes()], prefix, 128)
            == fp(&[tb.as_bytes(), ua.as_bytes()], prefix, 128);
        prop_assert_eq!(same, a & mask == b & mask, "{} {} /{}", ta, tb, prefix);
        // Within the prefix by construction.
        let near = Ipv4Addr::from((a & mask) | (b & !mask)).to_string();
        prop_assert_eq!(fp(&[ta.as_bytes()], prefix, 128), fp(&[near.as_bytes()], prefix, 128));
    }

    /// Outside `::ffff:0:0/96` (IPv4-mapped, below), an IPv6 address is
    /// compared on the v6 prefix.
    #[test]
    fn ipv6_prefixes(a in any::<u128>(), b in any::<u128>(), prefix in 0u8..=128) {
        prop_assume!(Ipv6Addr::from(a).to_ipv4_mapped().is_none());
        prop_assume!(Ipv6Addr::from(b).to_ipv4_mapped().is_none());
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        let (ta, tb) = (Ipv6Addr::from(a).to_string(), Ipv6Addr::from(b).to_string());
        let near = Ipv6Addr::from((a & mask) | (b & !mask)).to_string();
        prop_assert_eq!(fp(&[ta.as_bytes()], 32, prefix), fp(&[near.as_bytes()], 32, prefix));
        let same = fp(&[ta.as_bytes()], 32, prefix) == fp(&[tb.as_bytes()], 32, prefix);
        prop_assert_eq!(same, a & mask == b & mask, "{} {} /{}", ta, tb, prefix);
    }

    /// An IPv4-mapped address is its IPv4 address: the same fingerprint
    /// as the plain form, compared on the v4 prefix whatever the v6 one.
    #[test]
    fn ipv4_mapped_is_ipv4(a in any::<u32>(), b in any::<u32>(), v4 in 0u8..=32, v6 in 0u8..=128) {
        let (ia, ib) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
        let (ma, mb) = (ia.to_ipv6_mapped().to_string(), ib.to_ipv6_mapped().to_string());
        let (ta, tb) = (ia.to_string(), ib.to_string());
        prop_assert_eq!(fp(&[ma.as_bytes()], v4, v6), fp(&[ta.as_bytes()], v4, v6));
        let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
        let same = fp(&[ma.as_bytes()], v4, v6) == fp(&[mb.as_bytes()], v4, v6);
        prop_assert_eq!(same, a & mask == b & mask, "{} {} /{}", ma, mb, v4);
        prop_assert_eq!(same, fp(&[ma.as_bytes()], v4, v6) == fp(&[tb.as_bytes()], v4, v6));
    }
}
