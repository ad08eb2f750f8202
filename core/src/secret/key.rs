//! The key of `paranoid_session_secret_file`, checked once and held ready
//! for HMAC-SHA-256.
//!
//! A [`SecretKey`] can only be made from 32 to 4096 bytes, so a
//! [`Hasher`](super::Hasher) that has one always computes HMAC: there is no
//! key HMAC could refuse and no fallback to plain SHA-256. The key is held
//! as HMAC's 64-byte key block `K0` (RFC 2104: the key zero-padded, or its
//! SHA-256 zero-padded when longer than 64 bytes), which gives exactly the
//! HMAC of the key as written, in one heap buffer that is wiped when the key
//! is dropped and never copied (moving or sharing a key moves a pointer).

use std::fmt;

use hmac::digest::KeyInit;
use hmac::Hmac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// SHA-256's block size: the length of HMAC's key block.
const BLOCK: usize = 64;

/// HMAC key material; its bytes are never printed and are wiped on drop.
pub struct SecretKey {
    block: Box<Zeroizing<[u8; BLOCK]>>,
}

/// Why bytes cannot be a [`SecretKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyLengthError {
    /// Fewer than [`SecretKey::MIN_LEN`] bytes.
    #[error("secret file holds {0} bytes, at least {min} are required", min = SecretKey::MIN_LEN)]
    TooShort(usize),
    /// More than [`SecretKey::MAX_LEN`] bytes.
    #[error("secret file holds {0} bytes, at most {max} are allowed", max = SecretKey::MAX_LEN)]
    TooLong(usize),
}

impl SecretKey {
    /// Shortest key accepted: as long as the hash.
    pub const MIN_LEN: usize = 32;
    /// Longest key accepted.
    pub const MAX_LEN: usize = 4096;

    /// A key from `MIN_LEN..=MAX_LEN` bytes, taken as they are. `key` is
    /// read, not kept: the caller wipes its own buffer.
    pub fn new(key: &[u8]) -> Result<SecretKey, KeyLengthError> {
        if key.len() < Self::MIN_LEN {
            return Err(KeyLengthError::TooShort(key.len()));
        }
        if key.len() > Self::MAX_LEN {
            return Err(KeyLengthError::TooLong(key.len()));
        }
        let mut block = Box::new(Zeroizing::new([0u8; BLOCK]));
        match block.get_mut(..key.len()) {
            Some(head) => head.copy_from_slice(key),
            None => {
                // Longer than a block: K0 is the key's hash, written in
                // place.
                if let Some(head) = block.first_chunk_mut::<32>() {
                    Sha256::new().chain_update(key).finalize_into(head.into());
                }
            }
        }
        Ok(SecretKey { block })
    }

    /// HMAC-SHA-256 keyed with this key, ready for input.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        // The key block has HMAC's key size: no length to refuse.
        <Hmac<Sha256> as KeyInit>::new((&**self.block).into())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Constant time: whether two keys give the same HMAC.
impl PartialEq for SecretKey {
    fn eq(&self, other: &SecretKey) -> bool {
        self.block[..].ct_eq(&other.block[..]).into()
    }
}

impl Eq for SecretKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    fn reference(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn gives_the_hmac_of_the_key_as_written() {
        for len in [32, 33, 63, 64, 65, 100, 128, 4095, 4096] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut mac = SecretKey::new(&key).unwrap().mac();
            mac.update(b"data");
            let got: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(got, reference(&key, b"data"), "{len}");
        }
    }

    #[test]
    fn length_is_checked_once_here() {
        assert_eq!(
            SecretKey::new(&[1; 31]).unwrap_err(),
            KeyLengthError::TooShort(31)
        );
        assert_eq!(
            SecretKey::new(&[]).unwrap_err(),
            KeyLengthError::TooShort(0)
        );
        assert_eq!(
            SecretKey::new(&[1; 4097]).unwrap_err(),
            KeyLengthError::TooLong(4097)
        );
        assert!(SecretKey::new(&[1; 32]).is_ok());
        assert!(SecretKey::new(&[1; 4096]).is_ok());
    }

    #[test]
    fn keys_compare_by_their_hmac() {
        let a = SecretKey::new(&[1; 40]).unwrap();
        assert_eq!(a, SecretKey::new(&[1; 40]).unwrap());
        assert_ne!(a, SecretKey::new(&[2; 40]).unwrap());
        assert_ne!(a, SecretKey::new(&[1; 80]).unwrap());
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SecretKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
    }
}
