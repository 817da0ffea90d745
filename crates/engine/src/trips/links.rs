//! Share links: capabilities to read one trip without a key.
//!
//! A token is a selector and a secret, 24 random bytes in base64url: the first 8 name the
//! link (its `id`, in hex), the other 16 (128 bits) are the secret. Only the secret's
//! SHA-256 is kept, in memory, snapshots and the log, so neither a stolen snapshot nor
//! the log hands out working links. A token is checked by finding its link by the
//! selector, which is not secret, then comparing the secret's hash with the stored one in
//! constant time (`subtle`), so how long a guess takes tells nothing about the secret.

use base64::Engine as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// Bytes of the selector (the link's id).
const SELECTOR_BYTES: usize = 8;
/// Bytes of the secret: 128 bits.
const SECRET_BYTES: usize = 16;

/// One share link of a trip, as kept: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    /// Its id: the token's selector, in hex.
    pub id: String,
    /// SHA-256 of the token's secret.
    pub secret_hash: [u8; 32],
    /// When it stops working, Unix ms.
    pub expires_at: i64,
    /// The earliest point it shows, if limited.
    pub show_from: Option<i64>,
    /// The latest point it shows, if limited.
    pub show_to: Option<i64>,
}

impl Link {
    /// A new link and the token that opens it (shown once, then only its hash is kept).
    pub fn mint(expires_at: i64, show_from: Option<i64>, show_to: Option<i64>) -> (Self, String) {
        let mut bytes = [0u8; SELECTOR_BYTES + SECRET_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let (selector, secret) = bytes.split_at(SELECTOR_BYTES);
        let link = Self {
            id: hex(selector),
            secret_hash: sha2::Sha256::digest(secret).into(),
            expires_at,
            show_from,
            show_to,
        };
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        (link, token)
    }

    /// Whether `secret` (from a token) opens this link, compared in constant time.
    pub fn opens(&self, secret: &[u8]) -> bool {
        let hash: [u8; 32] = sha2::Sha256::digest(secret).into();
        bool::from(hash.ct_eq(&self.secret_hash))
    }

    /// Whether it still works at `now_ms`.
    pub fn live_at(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at
    }

    /// The window of points it shows: `[from, to]`.
    pub fn window(&self) -> (i64, i64) {
        (
            self.show_from.unwrap_or(i64::MIN),
            self.show_to.unwrap_or(i64::MAX),
        )
    }
}

/// A token split into the link id it names and its secret; `None` if it is not shaped like
/// a token at all.
pub fn split_token(token: &str) -> Option<(String, Vec<u8>)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    if bytes.len() != SELECTOR_BYTES + SECRET_BYTES {
        return None;
    }
    let (selector, secret) = bytes.split_at(SELECTOR_BYTES);
    Some((hex(selector), secret.to_vec()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_opens_its_link_and_nothing_else() {
        let (link, token) = Link::mint(100, None, None);
        let (other, other_token) = Link::mint(100, None, None);
        assert_eq!(token.len(), 32, "24 bytes in base64url");
        let (id, secret) = split_token(&token).expect("a token");
        assert_eq!(id, link.id);
        assert!(link.opens(&secret));
        assert!(!other.opens(&secret));
        let (_, other_secret) = split_token(&other_token).expect("a token");
        assert!(!link.opens(&other_secret));
        let mut flipped = secret.clone();
        flipped[0] ^= 1;
        assert!(!link.opens(&flipped));
        assert!(split_token("not a token").is_none());
        assert!(split_token(&token[..20]).is_none());
        assert!(link.live_at(99) && !link.live_at(100));
    }
}
