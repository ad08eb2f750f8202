//! Cookie values of secrets: tokens (32 bytes) and keys (nonces and secure
//! keys, 16 bytes), as unpadded base64url.

use hmac::{Hmac, Mac};
use paranoid_core::engine::{Key, KEY_LEN};
use paranoid_core::secret::{
    parse_text, parse_token, text_of, token_text, Hasher, SecretKey, Token, TOKEN_LEN,
    TOKEN_TEXT_LEN,
};
use proptest::collection::vec;
use proptest::prelude::*;
use sha2::Sha256;

use crate::config;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url text, mostly of the lengths the parsers expect.
fn texts() -> impl Strategy<Value = Vec<u8>> {
    let symbol = (0..64usize).prop_map(|i| ALPHABET[i]);
    prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(symbol.clone(), TOKEN_TEXT_LEN),
        vec(symbol.clone(), 22),
        vec(symbol, 0..50),
    ]
}

/// A different byte at `index`: either another alphabet symbol or any
/// other byte at all.
fn flip(text: &[u8], index: usize, with: u8, bit: Option<u8>) -> Vec<u8> {
    let mut out = text.to_vec();
    let i = index % out.len();
    out[i] = match bit {
        Some(bit) => out[i] ^ (1 << (bit % 8)),
        None if out[i] == with => {
            ALPHABET[(ALPHABET.iter().position(|&c| c == with).unwrap_or(0) + 1) % 64]
        }
        None => with,
    };
    assert_ne!(out, text);
    out
}

/// What is accepted is the canonical text of what it decodes to.
fn assert_canonical<const N: usize>(text: &[u8]) -> Result<(), TestCaseError> {
    if let Some(bytes) = parse_text::<N>(text) {
        prop_assert_eq!(text_of(&bytes).into_bytes(), text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Any bytes, at every secret size around the ones in use (the sizes
    /// differ in how many spare bits the last symbol has): no panic, and
    /// one secret has exactly one text.
    #[test]
    fn accepted_text_is_canonical(text in texts()) {
        assert_canonical::<1>(&text)?;
        assert_canonical::<2>(&text)?;
        assert_canonical::<3>(&text)?;
        assert_canonical::<KEY_LEN>(&text)?;
        assert_canonical::<TOKEN_LEN>(&text)?;
        assert_canonical::<33>(&text)?;
        if let Some(token) = parse_token(&text) {
            prop_assert_eq!(token_text(&token).into_bytes(), text);
        }
    }

    #[test]
    fn tokens_round_trip(token in any::<Token>()) {
        let text = token_text(&token);
        prop_assert_eq!(text.len(), TOKEN_TEXT_LEN);
        prop_assert!(text.bytes().all(|c| ALPHABET.contains(&c)));
        prop_assert_eq!(parse_token(text.as_bytes()), Some(token));
        prop_assert_eq!(parse_text::<TOKEN_LEN>(text.as_bytes()), Some(token));
        // A token is never mistaken for a key and the other way round.
        prop_assert_eq!(parse_text::<KEY_LEN>(text.as_bytes()), None);
    }

    #[test]
    fn keys_round_trip(key in any::<Key>()) {
        let text = text_of(&key);
        prop_assert_eq!(text.len(), 22);
        prop_assert_eq!(parse_text::<KEY_LEN>(text.as_bytes()), Some(key));
        prop_assert_eq!(parse_token(text.as_bytes()), None);
    }

    /// One changed character (another symbol, any byte, or one flipped
    /// bit): rejected, or a different token. Never the same one.
    #[test]
    fn a_changed_token_is_not_the_token(
        token in any::<Token>(),
        index in any::<usize>(),
        with in any::<u8>(),
        bit in proptest::option::of(0u8..8),
    ) {
        let text = token_text(&token);
        let changed = flip(text.as_bytes(), index, with, bit);
        if let Some(other) = parse_token(&changed) {
            prop_assert_ne!(other, token);
            prop_assert_eq!(token_text(&other).into_bytes(), changed);
        }
    }

    #[test]
    fn a_changed_key_is_not_the_key(
        key in any::<Key>(),
        index in any::<usize>(),
        with in any::<u8>(),
        bit in proptest::option::of(0u8..8),
    ) {
        let text = text_of(&key);
        let changed = flip(text.as_bytes(), index, with, bit);
        if let Some(other) = parse_text::<KEY_LEN>(&changed) {
            prop_assert_ne!(other, key);
        }
    }

    /// Cut or extended by anything: not a token any more.
    #[test]
    fn wrong_lengths_are_rejected(
        token in any::<Token>(),
        cut in 1usize..TOKEN_TEXT_LEN,
        extra in vec(any::<u8>(), 1..4),
    ) {
        let text = token_text(&token).into_bytes();
        prop_assert_eq!(parse_token(&text[..TOKEN_TEXT_LEN - cut]), None);
        let mut longer = text.clone();
        longer.extend_from_slice(&extra);
        prop_assert_eq!(parse_token(&longer), None);
    }
}

/// Exhaustive over the last symbol of a key: exactly the 4 symbols with
/// zero unused bits are accepted (16 bytes = 21 symbols + 2 bits).
#[test]
fn last_symbol_spare_bits_must_be_zero() {
    let text = text_of(&[0x5a; KEY_LEN]).into_bytes();
    let accepted: Vec<u8> = ALPHABET
        .iter()
        .copied()
        .filter(|&c| {
            let mut t = text.clone();
            t[21] = c;
            parse_text::<KEY_LEN>(&t).is_some()
        })
        .collect();
    assert_eq!(accepted, b"AQgw");
    // Same for a token: 32 bytes = 42 symbols + 4 bits, 16 accepted.
    let text = token_text(&[0xa5; TOKEN_LEN]).into_bytes();
    let accepted = ALPHABET
        .iter()
        .filter(|&&c| {
            let mut t = text.clone();
            t[42] = c;
            parse_token(&t).is_some()
        })
        .count();
    assert_eq!(accepted, 16);
}

proptest! {
    #![proptest_config(config(256))]

    /// A secret file's key hashes tokens as HMAC-SHA-256 keyed with the key
    /// exactly as written, whatever its length (SecretKey keeps HMAC's key
    /// block, which differs from the key when it is longer than 64 bytes).
    #[test]
    fn keyed_token_hash_is_hmac_of_the_key(
        key in prop_oneof![vec(any::<u8>(), 32..=64), vec(any::<u8>(), 65..300)],
        token in any::<Token>(),
    ) {
        let secret = SecretKey::new(&key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        mac.update(&token);
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        prop_assert_eq!(Hasher::new(Some(&secret)).token_hash(&token), expected);
    }
}
