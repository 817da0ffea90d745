//! Capabilities: tokens minted here that open one thing (a trip's share link, a device's
//! right to report), kept only as hashes.
//!
//! A token is a selector and a secret, 24 random bytes in base64url: the first 8 name what
//! it opens (its `id`, in hex), the other 16 (128 bits) are the secret. Only the secret's
//! SHA-256 is kept, in memory, snapshots and the log, so neither a stolen snapshot nor the
//! log hands out working tokens. A token is checked by finding what it opens by the
//! selector, which is not secret, then comparing the secret's hash with the stored one in
//! constant time (`subtle`), so how long a guess takes tells nothing about the secret.

use base64::Engine as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// Bytes of the selector.
const SELECTOR_BYTES: usize = 8;
/// Bytes of the secret: 128 bits.
const SECRET_BYTES: usize = 16;

/// A new capability: its id (the selector in hex), the SHA-256 of its secret, and the
/// token (shown once, never kept).
pub fn mint() -> (String, [u8; 32], String) {
    let mut bytes = [0u8; SELECTOR_BYTES + SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let (selector, secret) = bytes.split_at(SELECTOR_BYTES);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    (hex(selector), sha2::Sha256::digest(secret).into(), token)
}

/// A token split into the id it names and its secret; `None` if it is not shaped like a
/// token at all.
pub fn split(token: &str) -> Option<(String, Vec<u8>)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    if bytes.len() != SELECTOR_BYTES + SECRET_BYTES {
        return None;
    }
    let (selector, secret) = bytes.split_at(SELECTOR_BYTES);
    Some((hex(selector), secret.to_vec()))
}

/// Whether `secret` (from a token) hashes to `secret_hash`, compared in constant time.
pub fn opens(secret_hash: &[u8; 32], secret: &[u8]) -> bool {
    let hash: [u8; 32] = sha2::Sha256::digest(secret).into();
    bool::from(hash.ct_eq(secret_hash))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_opens_its_own_hash_and_nothing_else() {
        let (id, hash, token) = mint();
        let (other_id, other_hash, other_token) = mint();
        assert_ne!(id, other_id);
        assert_eq!(token.len(), 32, "24 bytes in base64url");
        let (named, secret) = split(&token).expect("a token");
        assert_eq!(named, id);
        assert!(opens(&hash, &secret));
        assert!(!opens(&other_hash, &secret));
        let (_, other_secret) = split(&other_token).expect("a token");
        assert!(!opens(&hash, &other_secret));
        let mut flipped = secret.clone();
        flipped[0] ^= 1;
        assert!(!opens(&hash, &flipped));
        assert!(split("not a token").is_none());
        assert!(split(&token[..20]).is_none());
    }
}
