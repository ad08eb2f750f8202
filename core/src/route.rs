//! Which memcached server holds a key: rendezvous (highest random weight)
//! hashing on a fixed, documented function, so that every nginx host, built
//! with any toolchain on any platform, picks the same server for a session.
//!
//! # The formula
//!
//! For a key `K` (the memcached key, prefix included, as bytes) and the
//! servers `S_0 .. S_n-1` (their names as written in
//! `paranoid_session_store`, as UTF-8 bytes):
//!
//! ```text
//! weight(S, K) = first 8 bytes of SHA-256(S || 0x00 || K), read big-endian
//! ```
//!
//! The key goes to the server of highest weight. Two equal weights (odds of
//! 2^-64 per pair) go to the bytewise smaller name, and two equal names to
//! the one listed first. The NUL byte frames the name: a configured name
//! never contains one, so no other (name, key) pair hashes the same bytes.
//!
//! Adding a server moves only the keys it now wins; removing one moves only
//! its own keys; the order of the list does not matter.

use sha2::{Digest, Sha256};

/// The rendezvous weight of `server` for `key`: the first 8 bytes of
/// `SHA-256(server || 0x00 || key)`, big-endian.
pub fn weight(server: &[u8], key: &[u8]) -> u64 {
    let digest = Sha256::new()
        .chain_update(server)
        .chain_update([0u8])
        .chain_update(key)
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head)
}

/// Index in `servers` of the server that holds `key` (see the module
/// documentation for the formula). An empty list gives 0.
pub fn route(key: &[u8], servers: &[String]) -> usize {
    let mut best: Option<(u64, &[u8], usize)> = None;
    for (index, name) in servers.iter().enumerate() {
        let name = name.as_bytes();
        let w = weight(name, key);
        let wins = match best {
            None => true,
            Some((best_w, best_name, _)) => w > best_w || (w == best_w && name < best_name),
        };
        if wins {
            best = Some((w, name, index));
        }
    }
    best.map_or(0, |(_, _, index)| index)
}

#[cfg(test)]
mod tests;
