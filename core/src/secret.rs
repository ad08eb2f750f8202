//! Session secrets: tokens, uids and nonces from the OS CSPRNG, their cookie
//! encoding, and the hashes stored in memcached in their place.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::control::UserId;
use crate::record::{Hash, UID_LEN};

mod key;

pub use key::{KeyLengthError, SecretKey};

/// Bytes of a session token.
pub const TOKEN_LEN: usize = 32;
/// Characters of a token in its cookie (base64url, no padding).
pub const TOKEN_TEXT_LEN: usize = 43;

/// Raw token bytes; never stored, logged or sent upstream.
pub type Token = [u8; TOKEN_LEN];

/// What the OS CSPRNG reports: getrandom's error, with its errno.
pub use rand::rand_core::OsError;

/// The CSPRNG failed: no secret can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the OS random generator failed")]
pub struct RandomError {
    /// The operating system's reason, when it gave one.
    #[source]
    os: Option<OsError>,
}

impl RandomError {
    /// A failure without the operating system's reason (another source of
    /// secrets than the OS, such as a test's).
    pub const UNEXPLAINED: RandomError = RandomError { os: None };
}

impl From<OsError> for RandomError {
    fn from(os: OsError) -> RandomError {
        RandomError { os: Some(os) }
    }
}

/// Fills a fresh secret from the operating system's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    OsRng.try_fill_bytes(&mut out)?;
    Ok(out)
}

pub fn new_token() -> Result<Token, RandomError> {
    random()
}

pub fn new_uid() -> Result<[u8; UID_LEN], RandomError> {
    random()
}

/// The cookie text of a token.
pub fn token_text(token: &Token) -> String {
    URL_SAFE_NO_PAD.encode(token)
}

/// A cookie value back to a token. Anything but the canonical 43-character
/// base64url text of 32 bytes counts as absent.
pub fn parse_token(text: &[u8]) -> Option<Token> {
    parse_text(text)
}

/// The cookie text of any secret (nonce, secure key).
pub fn text_of(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A cookie value back to `N` secret bytes: only the canonical unpadded
/// base64url text of exactly `N` bytes is accepted.
pub fn parse_text<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    let mut out = [0u8; N];
    // decode_slice rejects non-canonical trailing bits in the last symbol
    // (base64's default engine is strict), so one secret has one text.
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Some(out),
        _ => None,
    }
}

/// Hashes secrets for storage: HMAC-SHA-256 keyed with the secret file when
/// there is one, plain SHA-256 otherwise. Which one is fixed when the
/// hasher is made: a [`SecretKey`] is valid by construction, so a keyed
/// hasher never falls back to plain SHA-256. A domain label keeps a
/// token's hash from ever equalling a nonce's or a fingerprint's.
#[derive(Clone, Copy)]
pub struct Hasher<'a> {
    key: Option<&'a SecretKey>,
}

impl<'a> Hasher<'a> {
    pub fn new(secret: Option<&'a SecretKey>) -> Hasher<'a> {
        Hasher { key: secret }
    }

    /// The unkeyed hasher, usable in constants.
    pub const fn new_const() -> Hasher<'static> {
        Hasher { key: None }
    }

    pub fn hash(&self, domain: &str, parts: &[&[u8]]) -> Hash {
        match self.key {
            Some(key) => {
                let mut mac = key.mac();
                mac.update(domain.as_bytes());
                for part in parts {
                    mac.update(&(part.len() as u64).to_be_bytes());
                    mac.update(part);
                }
                mac.finalize().into_bytes().into()
            }
            None => self.plain(domain, parts),
        }
    }

    fn plain(&self, domain: &str, parts: &[&[u8]]) -> Hash {
        let mut sha = Sha256::new();
        sha.update(domain.as_bytes());
        for part in parts {
            sha.update((part.len() as u64).to_be_bytes());
            sha.update(part);
        }
        sha.finalize().into()
    }

    /// What the store knows a token by: exactly SHA-256(token), or
    /// HMAC-SHA-256(secret, token) with a secret file, so tools outside
    /// nginx can find a session's record from its cookie.
    pub fn token_hash(&self, token: &Token) -> Hash {
        match self.key {
            Some(key) => {
                let mut mac = key.mac();
                mac.update(token);
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(token).into(),
        }
    }

    /// The memcached key of a token: `prefix + hex(hash)`.
    pub fn store_key(&self, prefix: &str, token: &Token) -> String {
        key_for_hash(prefix, &self.token_hash(token))
    }
}

/// The memcached key under which the record of a token hash lives.
pub fn key_for_hash(prefix: &str, hash: &Hash) -> String {
    let mut key = String::with_capacity(prefix.len() + 2 * hash.len());
    key.push_str(prefix);
    push_hex(&mut key, hash);
    key
}

/// What marks a user index's key: hex digits never contain it, so no
/// session or pointer key (`prefix + 64 hex digits`) is ever a user's.
pub const USER_KEY_MARK: &str = "u:";

/// The memcached key of a user's index of sessions
/// ([`crate::user_index`]): `prefix + "u:" + hex(hash("user", id))`, keyed
/// with the secret file like every other hash. Bounded length whatever the
/// id, and no id in memcached's key space; without a secret file the hash
/// hides nothing from whoever can guess the ids.
pub fn user_key(prefix: &str, hasher: &Hasher<'_>, user: &UserId) -> String {
    let hash = hasher.hash("user", &[user.as_bytes()]);
    let mut key = String::with_capacity(prefix.len() + USER_KEY_MARK.len() + 2 * hash.len());
    key.push_str(prefix);
    key.push_str(USER_KEY_MARK);
    push_hex(&mut key, &hash);
    key
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    push_hex(&mut out, bytes);
    out
}

/// Lowercase hex of `bytes` appended to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Constant-time equality of two hashes.
pub fn same(a: &Hash, b: &Hash) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_round_trip() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        let text = token_text(&a);
        assert_eq!(text.len(), TOKEN_TEXT_LEN);
        assert!(text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(parse_token(text.as_bytes()), Some(a));
    }

    #[test]
    fn malformed_tokens_are_absent() {
        let good = token_text(&[7u8; 32]);
        assert!(parse_token(good.as_bytes()).is_some());
        for bad in [
            "",
            "abc",
            &good[..42],
            &format!("{good}A"),
            &format!("{}=", &good[..42]),
            &good.replace(|c: char| c.is_ascii_alphabetic(), "+"),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(parse_token(bad.as_bytes()), None, "{bad:?}");
        }
        // Same 32 bytes, last symbol with non-zero unused bits: not canonical.
        let mut noncanon = good.clone().into_bytes();
        let last = noncanon.len() - 1;
        noncanon[last] = if noncanon[last] == b'c' { b'd' } else { b'c' };
        if let Some(t) = parse_token(&noncanon) {
            assert_eq!(token_text(&t).as_bytes(), &noncanon[..]);
        }
        assert_eq!(parse_token(&[0xff; 43]), None);
    }

    fn secret_key(byte: u8) -> SecretKey {
        SecretKey::new(&[byte; 32]).unwrap()
    }

    #[test]
    fn keys_depend_on_secret_and_prefix_only() {
        let token = [1u8; 32];
        let plain = Hasher::new(None).store_key("ps:", &token);
        assert!(plain.starts_with("ps:"));
        assert_eq!(plain.len(), 3 + 64);
        assert_eq!(plain, Hasher::new(None).store_key("ps:", &token));
        let keyed = Hasher::new(Some(&secret_key(9))).store_key("ps:", &token);
        assert_ne!(plain, keyed);
        assert_ne!(
            keyed,
            Hasher::new(Some(&secret_key(8))).store_key("ps:", &token)
        );
        assert!(!plain.contains(&token_text(&token)));
    }

    #[test]
    fn token_hash_is_plain_sha256_or_hmac() {
        let token = [5u8; 32];
        let plain: Hash = Sha256::digest(token).into();
        assert_eq!(Hasher::new(None).token_hash(&token), plain);
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&[9u8; 32]).unwrap();
        mac.update(&token);
        let keyed: Hash = mac.finalize().into_bytes().into();
        assert_eq!(Hasher::new(Some(&secret_key(9))).token_hash(&token), keyed);
    }

    #[test]
    fn domains_separate_hashes() {
        let h = Hasher::new(None);
        assert_ne!(h.hash("token", &[b"x"]), h.hash("nonce", &[b"x"]));
        assert_ne!(h.hash("fp", &[b"ab", b"c"]), h.hash("fp", &[b"a", b"bc"]));
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        // SHA-256("token" || be64(3) || "abc")
        let mut sha = Sha256::new();
        sha.update(b"token");
        sha.update(3u64.to_be_bytes());
        sha.update(b"abc");
        let expected: Hash = sha.finalize().into();
        assert_eq!(Hasher::new(None).hash("token", &[b"abc"]), expected);
    }

    #[test]
    fn sixteen_byte_secrets_round_trip() {
        let key = [0xabu8; 16];
        let text = text_of(&key);
        assert_eq!(text.len(), 22);
        assert_eq!(parse_text::<16>(text.as_bytes()), Some(key));
        assert_eq!(parse_text::<16>(&text.as_bytes()[..21]), None);
        assert_eq!(parse_text::<32>(text.as_bytes()), None);
    }

    #[test]
    fn user_keys() {
        let alice = UserId::try_from("alice").unwrap();
        let bob = UserId::try_from("bob").unwrap();
        let plain = Hasher::new(None);
        let key = user_key("ps:", &plain, &alice);
        assert_eq!(key.len(), 3 + 2 + 64);
        assert_eq!(
            key,
            format!("ps:u:{}", hex(&plain.hash("user", &[b"alice"])))
        );
        assert!(!key.contains("alice"));
        assert_eq!(key, user_key("ps:", &plain, &alice), "stable");
        assert_ne!(key, user_key("ps:", &plain, &bob));
        assert_ne!(key, user_key("xx:", &plain, &alice));
        let secret = secret_key(9);
        let keyed = Hasher::new(Some(&secret));
        assert_ne!(key, user_key("ps:", &keyed, &alice));
        // Not the key of a token whose hash happened to be the user's: the
        // label differs, and so does the shape of the key.
        assert_ne!(
            plain.hash("user", &[b"alice"]),
            plain.hash("token", &[b"alice"])
        );
        assert!(key_for_hash("ps:", &plain.hash("user", &[b"alice"])) != key);
        let longest = UserId::parse(&[b'x'; 128]).unwrap();
        assert_eq!(user_key("", &plain, &longest).len(), 66);
    }

    #[test]
    fn hex_and_constant_time_compare() {
        let mut s = String::new();
        push_hex(&mut s, &[0x00, 0xab, 0xff]);
        assert_eq!(s, "00abff");
        assert!(same(&[3; 32], &[3; 32]));
        assert!(!same(&[3; 32], &[4; 32]));
    }
}
