//! API keys, for the app's back end: scopes and per-key rate limits.
//!
//! The keys file (`--keys FILE`) has one key a line: `<key> <scopes> [<requests per
//! second>]`, scopes comma-separated from `read`, `write`, `admin`; `#` starts a comment.
//! Each key is kept only as its SHA-256 digest, and a presented key is looked up by its
//! digest: the comparison never runs over the secret itself, so its timing reveals nothing
//! about it, and the key never sits in memory or logs in the clear. A key is named in logs by
//! its line number.
//!
//! A key with a rate gets a token bucket (`governor`) of that many requests per second with
//! a burst of one second's worth; one key's bucket never slows another.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use super::Scope;

/// One configured key.
pub struct ApiKey {
    /// How logs name it: `key on line N`.
    pub label: String,
    /// The line of the keys file it is on: names it without naming the secret.
    pub line: usize,
    /// What it owns (its fences) and is counted against: `key:` and 16 hex digits of a
    /// hash of the key, the same whatever line it is on, so that editing the keys file
    /// keeps every key's fences.
    pub owner: Arc<str>,
    scopes: Vec<Scope>,
    /// Requests per second, if limited.
    pub rate: Option<NonZeroU32>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("label", &self.label)
            .field("scopes", &self.scopes)
            .field("rate", &self.rate)
            .finish()
    }
}

impl ApiKey {
    /// Whether the key has `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Takes a token; `Err(wait)` if the bucket is empty, with how long until one is back.
    pub fn take(&self) -> Result<(), std::time::Duration> {
        match &self.limiter {
            None => Ok(()),
            // The limiter's own clock: making a clock calibrates it (cpuid), which cost a
            // third of the server's time when every request was refused.
            Some(limiter) => limiter.check().map_err(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()))
            }),
        }
    }
}

/// Why a keys file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file could not be read.
    #[error("keys file: {0}")]
    Read(#[from] std::io::Error),
    /// A line is malformed (the key itself is never shown).
    #[error("keys file line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file names no key.
    #[error("keys file has no key; remove --keys to run an open server")]
    Empty,
}

/// The configured keys.
#[derive(Debug, Default)]
pub struct Keys {
    by_digest: HashMap<[u8; 32], ApiKey>,
}

impl Keys {
    /// Reads a keys file.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        Self::parse(&fs_err::read_to_string(path)?)
    }

    /// Parses the text of a keys file.
    pub fn parse(text: &str) -> Result<Self, KeysError> {
        let mut by_digest = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let bad = |reason: &str| KeysError::Line {
                line,
                reason: reason.to_string(),
            };
            let fields: Vec<&str> = content.split_whitespace().collect();
            let (key, scopes, rate) = match fields.as_slice() {
                [key, scopes] => (*key, *scopes, None),
                [key, scopes, rate] => (*key, *scopes, Some(*rate)),
                _ => return Err(bad("expected `<key> <scopes> [<requests per second>]`")),
            };
            if key.len() < 16 {
                return Err(bad("a key must be at least 16 characters"));
            }
            let scopes = scopes
                .split(',')
                .map(|s| match s {
                    "read" => Ok(Scope::Read),
                    "write" => Ok(Scope::Write),
                    "admin" => Ok(Scope::Admin),
                    other => Err(bad(&format!(
                        "unknown scope {other:?}; scopes are read, write, admin"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rate = rate
                .map(|r| {
                    r.parse::<NonZeroU32>().map_err(|_| {
                        bad("the rate must be a whole number of requests per second, at least 1")
                    })
                })
                .transpose()?;
            let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            let api_key = ApiKey {
                label: format!("key on line {line}"),
                line,
                owner: owner_of(key),
                scopes,
                rate,
                limiter: rate.map(|r| RateLimiter::direct(Quota::per_second(r))),
            };
            if by_digest.insert(digest, api_key).is_some() {
                return Err(bad("the same key appears twice"));
            }
        }
        if by_digest.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(Self { by_digest })
    }

    /// The key presented as `Authorization: Bearer <key>`, if it is one of ours.
    pub fn lookup(&self, presented: &str) -> Option<&ApiKey> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.by_digest.get(&digest)
    }
}

/// The owner id of a key: a hash of it apart from the one it is looked up by.
fn owner_of(key: &str) -> Arc<str> {
    let digest = Sha256::new()
        .chain_update(b"proxima fence owner\0")
        .chain_update(key.as_bytes())
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("key:{hex}").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_with_scopes_rates_and_comments() {
        let keys = Keys::parse(
            "# ops\nreader-key-0123456789 read 5\n\nwriter-key-0123456789 read,write  # no limit\n",
        )
        .expect("valid file");
        let reader = keys.lookup("reader-key-0123456789").expect("known");
        assert!(reader.allows(Scope::Read) && !reader.allows(Scope::Write));
        assert_eq!(reader.rate.map(NonZeroU32::get), Some(5));
        let writer = keys.lookup("writer-key-0123456789").expect("known");
        assert!(writer.allows(Scope::Write) && writer.rate.is_none());
        assert!(keys.lookup("writer-key-012345678").is_none());
        assert_ne!(reader.owner, writer.owner);
        assert!(reader.owner.starts_with("key:") && reader.owner.len() == 20);
        let moved = Keys::parse("\n\nreader-key-0123456789 read\n").expect("valid");
        assert_eq!(
            moved.lookup("reader-key-0123456789").expect("known").owner,
            reader.owner,
            "the same owner on another line"
        );
    }

    #[test]
    fn a_bad_line_names_its_number_but_never_the_key() {
        let err = Keys::parse("good-key-0123456789 read\nsecret-key-0123456789 read,fly\n")
            .expect_err("bad scope");
        let text = err.to_string();
        assert!(
            text.contains("line 2") && text.contains("fly") && !text.contains("secret"),
            "{text}"
        );
        assert!(matches!(
            Keys::parse("short read"),
            Err(KeysError::Line { line: 1, .. })
        ));
        assert!(matches!(Keys::parse("# nothing\n"), Err(KeysError::Empty)));
        assert!(matches!(
            Keys::parse("some-key-0123456789 read 0"),
            Err(KeysError::Line { .. })
        ));
    }

    #[test]
    fn a_rate_limited_key_runs_dry_after_a_seconds_burst() {
        let keys = Keys::parse("burst-key-0123456789 read 5").expect("valid");
        let key = keys.lookup("burst-key-0123456789").expect("known");
        let allowed = (0..20).filter(|_| key.take().is_ok()).count();
        assert_eq!(allowed, 5, "a burst of one second's worth");
        let wait = key.take().expect_err("empty");
        assert!(wait <= std::time::Duration::from_millis(200), "{wait:?}");
    }
}
