//! Traveller tokens: JWTs (`jsonwebtoken`) whose `sub` is a traveller id, for phones that
//! talk to Proxima directly.
//!
//! A token is checked against the configured keys: an HS256 secret, one public key (RS256,
//! ES256 or EdDSA, by the key's type), and a JWKS file whose keys are chosen by the token's
//! `kid`. The algorithm a token may use is the one its key is for, never the one its header
//! asks for alone: a header saying `none`, or HS256 over a public key (the HS/RS confusion),
//! is refused. `aud` and `iss` must equal the configured ones; `exp` is required, and `exp`
//! and `nbf` are checked with a small leeway for clocks that differ.
//!
//! The token's `scope` claim (space-separated, as OAuth 2 writes it) grants `read` and
//! `write`; a token never has `admin`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::Scope;
use crate::ids::validate_id;

/// Where the keys that sign traveller tokens are, and what tokens must say.
#[derive(Debug, Clone, Default)]
pub struct TokenConfig {
    /// A file holding the HS256 secret (its bytes, a trailing newline dropped).
    pub hs256_secret_file: Option<PathBuf>,
    /// A PEM public key: RSA (RS256), P-256 (ES256) or Ed25519 (EdDSA).
    pub public_key_file: Option<PathBuf>,
    /// A JWKS document; a token names its key with `kid`.
    pub jwks_file: Option<PathBuf>,
    /// The `aud` every token must carry.
    pub audience: Option<String>,
    /// The `iss` every token must carry.
    pub issuer: Option<String>,
    /// Seconds of clock difference allowed on `exp` and `nbf`.
    pub leeway_s: u64,
}

/// Why the token configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// A key file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file holds no key this build can use.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Tokens are configured without the audience or issuer they must carry.
    #[error("--jwt-audience and --jwt-issuer are required with traveller tokens")]
    Unbound,
}

/// A verified token: who it speaks for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The traveller (`sub`).
    pub traveller: Arc<str>,
    /// `read` and `write`, as its `scope` grants.
    pub scopes: Vec<Scope>,
}

/// Why a presented token was refused (said in the 401, never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    /// Not a JWT at all.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` has not come yet.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` is missing or another.
    #[error("the token is for another audience")]
    Audience,
    /// `iss` is missing or another.
    #[error("the token is from another issuer")]
    Issuer,
    /// A claim this server requires is missing.
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    /// Its header's algorithm is none this server accepts for its key.
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    /// No configured key matches it (an unknown `kid`).
    #[error("no configured key matches the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// `sub` is not a traveller id.
    #[error("the token's sub is not a traveller id: {0}")]
    Subject(String),
}

/// The configured token keys, ready to verify.
pub struct Tokens {
    hs256: Option<DecodingKey>,
    public: Option<(Algorithm, DecodingKey)>,
    jwks: Vec<(String, Algorithm, DecodingKey)>,
    /// The checks for each algorithm a configured key verifies, made once: a token's
    /// header chooses among them, and building one per request would copy its sets.
    validations: Vec<(Algorithm, Validation)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("hs256", &self.hs256.is_some())
            .field("public", &self.public.as_ref().map(|(a, _)| a))
            .field("jwks", &self.jwks.len())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, TokensError> {
    std::fs::read(path).map_err(|source| TokensError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn bad_key(path: &Path, reason: impl Into<String>) -> TokensError {
    TokensError::Key {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A PEM public key and the one algorithm it verifies.
fn public_key(path: &Path) -> Result<(Algorithm, DecodingKey), TokensError> {
    let pem = read(path)?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((Algorithm::RS256, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((Algorithm::ES256, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        return Ok((Algorithm::EdDSA, key));
    }
    Err(bad_key(
        path,
        "not a PEM public key of RSA (RS256), P-256 (ES256) or Ed25519 (EdDSA)",
    ))
}

/// The keys of a JWKS document that say their algorithm and id; HMAC keys are refused (a
/// shared secret belongs in its own file).
fn jwks(path: &Path) -> Result<Vec<(String, Algorithm, DecodingKey)>, TokensError> {
    let set: JwkSet = serde_json::from_slice(&read(path)?)
        .map_err(|e| bad_key(path, format!("not a JWKS document: {e}")))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| bad_key(path, format!("keys[{i}]: no kid")))?;
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| Algorithm::try_from(a).ok())
            .ok_or_else(|| bad_key(path, format!("keys[{i}]: no usable alg")))?;
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(bad_key(
                path,
                format!("keys[{i}]: an HMAC secret; use --jwt-hs256-secret-file"),
            ));
        }
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| bad_key(path, format!("keys[{i}]: {e}")))?;
        keys.push((kid, alg, key));
    }
    Ok(keys)
}

impl Tokens {
    /// The configured keys, or `None` when no token key is configured.
    pub fn load(config: &TokenConfig) -> Result<Option<Self>, TokensError> {
        let hs256 = config
            .hs256_secret_file
            .as_deref()
            .map(|path| {
                let mut secret = read(path)?;
                while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    secret.pop();
                }
                if secret.len() < 32 {
                    return Err(bad_key(path, "an HS256 secret must be at least 32 bytes"));
                }
                DecodingKey::from_secret(&secret).map_err(|e| bad_key(path, e.to_string()))
            })
            .transpose()?;
        let public = config
            .public_key_file
            .as_deref()
            .map(public_key)
            .transpose()?;
        let jwks = config
            .jwks_file
            .as_deref()
            .map(jwks)
            .transpose()?
            .unwrap_or_default();
        if hs256.is_none() && public.is_none() && jwks.is_empty() {
            return Ok(None);
        }
        let (Some(audience), Some(issuer)) = (&config.audience, &config.issuer) else {
            return Err(TokensError::Unbound);
        };
        let mut algorithms: Vec<Algorithm> = hs256
            .as_ref()
            .map(|_| Algorithm::HS256)
            .into_iter()
            .chain(public.as_ref().map(|(alg, _)| *alg))
            .chain(jwks.iter().map(|(_, alg, _)| *alg))
            .collect();
        algorithms.sort_by_key(|alg| format!("{alg:?}"));
        algorithms.dedup();
        let validations = algorithms
            .into_iter()
            .map(|alg| {
                let mut validation = Validation::new(alg);
                validation.set_audience(&[audience]);
                validation.set_issuer(&[issuer]);
                validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
                validation.validate_nbf = true;
                validation.leeway = config.leeway_s;
                (alg, validation)
            })
            .collect();
        Ok(Some(Self {
            hs256,
            public,
            jwks,
            validations,
        }))
    }

    /// Verifies a presented token.
    pub fn verify(&self, token: &str) -> Result<Token, TokenRefused> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenRefused::Algorithm("in its header".to_string())
            }
            _ => TokenRefused::Malformed,
        })?;
        let (alg, key) = self.key_for(header.alg, header.kid.as_deref())?;
        let (_, validation) = self
            .validations
            .iter()
            .find(|(a, _)| *a == alg)
            .expect("every key's algorithm has its checks");
        let data =
            jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRefused::Expired,
                ErrorKind::ImmatureSignature => TokenRefused::NotYetValid,
                ErrorKind::InvalidAudience => TokenRefused::Audience,
                ErrorKind::InvalidIssuer => TokenRefused::Issuer,
                ErrorKind::MissingRequiredClaim(claim) => TokenRefused::MissingClaim(claim.clone()),
                ErrorKind::InvalidSignature => TokenRefused::Signature,
                ErrorKind::InvalidAlgorithm => TokenRefused::Algorithm(format!("{alg:?}")),
                _ => TokenRefused::Malformed,
            })?;
        validate_id(&data.claims.sub).map_err(|e| TokenRefused::Subject(e.to_string()))?;
        let scopes = data
            .claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .filter_map(|s| match s {
                "read" => Some(Scope::Read),
                "write" => Some(Scope::Write),
                _ => None,
            })
            .collect();
        Ok(Token {
            traveller: data.claims.sub.into(),
            scopes,
        })
    }

    /// The key a token's header points at, and the one algorithm that key verifies.
    fn key_for(
        &self,
        asked: Algorithm,
        kid: Option<&str>,
    ) -> Result<(Algorithm, &DecodingKey), TokenRefused> {
        if let Some(kid) = kid
            && !self.jwks.is_empty()
        {
            let (_, alg, key) = self
                .jwks
                .iter()
                .find(|(id, _, _)| id == kid)
                .ok_or(TokenRefused::UnknownKey)?;
            return if *alg == asked {
                Ok((*alg, key))
            } else {
                Err(TokenRefused::Algorithm(format!("{asked:?}")))
            };
        }
        match (asked, &self.hs256, &self.public) {
            (Algorithm::HS256, Some(secret), _) => Ok((Algorithm::HS256, secret)),
            (asked, _, Some((alg, key))) if asked == *alg => Ok((*alg, key)),
            (asked, _, _) => Err(TokenRefused::Algorithm(format!("{asked:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt")
            .join(name)
    }

    #[test]
    fn a_token_configuration_is_refused_whole_when_incomplete_or_weak() {
        let none = Tokens::load(&TokenConfig::default()).expect("no tokens");
        assert!(none.is_none());
        let unbound = TokenConfig {
            hs256_secret_file: Some(fixture("hs256-secret.txt")),
            ..TokenConfig::default()
        };
        assert!(matches!(Tokens::load(&unbound), Err(TokensError::Unbound)));
        let dir = tempfile::tempdir().expect("temp dir");
        let short = dir.path().join("short");
        std::fs::write(&short, "too short\n").expect("write");
        let weak = TokenConfig {
            hs256_secret_file: Some(short),
            audience: Some("a".into()),
            issuer: Some("i".into()),
            ..TokenConfig::default()
        };
        let err = Tokens::load(&weak).expect_err("a short secret");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let not_a_key = TokenConfig {
            public_key_file: Some(fixture("hs256-secret.txt")),
            audience: Some("a".into()),
            issuer: Some("i".into()),
            ..TokenConfig::default()
        };
        let err = Tokens::load(&not_a_key).expect_err("not a PEM key");
        assert!(err.to_string().contains("not a PEM public key"), "{err}");
        let jwks = TokenConfig {
            jwks_file: Some(fixture("jwks.json")),
            audience: Some("a".into()),
            issuer: Some("i".into()),
            ..TokenConfig::default()
        };
        let loaded = Tokens::load(&jwks).expect("valid").expect("tokens");
        assert_eq!(loaded.jwks.len(), 1);
        assert_eq!(loaded.jwks[0].1, Algorithm::RS256);
    }
}
