//! Share links: capabilities to read one trip without a key. The token's shape, hashing
//! and checking are [`crate::capability`]'s.

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
        let (id, secret_hash, token) = crate::capability::mint();
        let link = Self {
            id,
            secret_hash,
            expires_at,
            show_from,
            show_to,
        };
        (link, token)
    }

    /// Whether `secret` (from a token) opens this link, compared in constant time.
    pub fn opens(&self, secret: &[u8]) -> bool {
        crate::capability::opens(&self.secret_hash, secret)
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
    crate::capability::split(token)
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
