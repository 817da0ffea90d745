//! Who may call: service keys for the app's back end ([`keys`]) and traveller tokens for
//! phones ([`tokens`]), and what a traveller token may do ([`Caller`]).
//!
//! Both are sent as `Authorization: Bearer ...`. A service key can do whatever its scopes
//! allow, as any traveller (it names the viewer it reads as). A traveller token speaks for
//! one traveller, its `sub`: it changes only that traveller (its position, sharing, delete
//! and fences), reads as it (a `viewer` must be absent or equal to it), and streams only its
//! own fences. A change it may not make is refused before anything is looked up, so the
//! answer never depends on whether another traveller exists.
//!
//! Every caller is an **owner**: fences are named per owner, so one caller's fence ids
//! say nothing about another's, and quotas (fences, vertices, streams, live maps) are
//! counted per owner.

pub mod keys;
pub mod tokens;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine as _;

pub use keys::{ApiKey, Keys, KeysError};
pub use tokens::{Token, TokenConfig, TokenRefused, Tokens, TokensError};

use super::problem::ApiError;
use crate::fences::OPEN_OWNER;

/// The credential of an `Authorization: Bearer ...` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The user and password of an `Authorization: Basic ...` header, split at the last colon,
/// not the first as RFC 7617 would: traveller ids may hold colons, and device tokens (the
/// passwords trackers send) never do.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.rsplit_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Queries.
    Read,
    /// Changes.
    Write,
    /// Operations (snapshots).
    Admin,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        })
    }
}

/// Who made a request, as admission found out. Handlers take it as an extractor: admission
/// puts it in the request for the routes that ask who is calling (fences, streams) and for
/// every request made with a traveller token; elsewhere it is a service caller without
/// the admin scope (the routes that reach that default never look at either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's line in the keys file, for a service key.
    pub key: Option<usize>,
    /// Whether the caller has the admin scope (everyone has, on an open server).
    pub admin: bool,
    /// Whether the caller has the read scope (everyone has, on an open server): a device
    /// token reads (OwnTracks' friends), so only a caller that may read makes one.
    pub reads: bool,
    /// The traveller a token speaks for; `None` for a service key or an open server.
    pub traveller: Option<Arc<str>>,
    /// What the caller owns (fences) and is counted against: `key:<hex>` for a key,
    /// `traveller:<id>` for a token, `open` on an open server.
    pub owner: Arc<str>,
}

impl Caller {
    /// The caller of an open server: no key, every scope.
    pub fn open() -> Self {
        // Shared: admission starts every request from this caller (no allocation).
        static OPEN: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| OPEN_OWNER.into());
        Self {
            key: None,
            admin: true,
            reads: true,
            traveller: None,
            owner: OPEN.clone(),
        }
    }

    /// The caller a traveller token speaks for.
    pub fn traveller(traveller: Arc<str>) -> Self {
        Self {
            key: None,
            admin: false,
            reads: false,
            owner: format!("traveller:{traveller}").into(),
            traveller: Some(traveller),
        }
    }

    /// Whether the caller is privileged for fence quotas: an admin-scope key, or anyone on
    /// an open server (see [`crate::fences::FenceQuotas`]).
    pub fn privileged(&self) -> bool {
        self.admin && self.traveller.is_none()
    }

    /// The viewer a read is made as. A service caller reads as whom it names (`None`: as
    /// nobody, seeing public travellers only); a traveller token reads as its traveller,
    /// and naming anyone else is a 403.
    pub fn viewer(&self, named: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
        match (&self.traveller, named) {
            (None, named) => Ok(named),
            (Some(me), None) => Ok(Some(me.to_string())),
            (Some(me), Some(named)) if *named == **me => Ok(Some(named)),
            (Some(_), Some(_)) => Err(ApiError::forbidden(format!(
                "{field}: a traveller token reads as its own traveller; leave {field} out or set it to the token's sub"
            ))),
        }
    }

    /// Refuses a change to traveller `id` by a token for another traveller (whether or not
    /// `id` exists: the answer must not tell).
    pub fn may_change(&self, id: &str, field: &str) -> Result<(), ApiError> {
        match &self.traveller {
            Some(me) if **me != *id => Err(ApiError::forbidden(format!(
                "{field}: a traveller token may change only its own traveller"
            ))),
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| Caller {
                admin: false,
                reads: false,
                ..Caller::open()
            }))
    }
}
