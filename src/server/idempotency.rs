//! `Idempotency-Key` (the IETF draft's header) on every write: a client that sends a write
//! with a key, and retries it with the same key after losing the answer (a timeout, a
//! dropped connection, a 503 from a cluster node whose NATS went away), gets the first
//! answer again (same status and body, with `Idempotent-Replayed: true`) and nothing is
//! applied twice.
//!
//! - Keys are the caller's own: the same key from two callers names two requests, so no
//!   caller can read another's answers by guessing its keys.
//! - A request is its method, target and body (for a streamed import, its declared length
//!   and type instead of the body, which is not held): the same key with another request is
//!   a 422, and with one still being answered a 409.
//! - Answers kept are those of requests that were processed: successes and refusals (4xx),
//!   not 5xx nor 429, after which a retry is a new attempt.
//! - On a single node the answers are kept in memory for `--idempotency-window`, bounded
//!   in bytes and per caller; a restart forgets them (a retry then is applied as new, which
//!   every write here tolerates: they upsert, or delete what is already gone). In a
//!   cluster the key also becomes the change's `Nats-Msg-Id`, so JetStream stores a retried
//!   publish once whichever node it reaches, within its duplicate window.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::AppState;
use super::auth::Caller;
use super::problem::ApiError;

/// The request header.
pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer given again for a retried key.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key taken.
pub const MAX_KEY_BYTES: usize = 255;
/// Answers one caller may have kept at once: past it, its oldest are forgotten first.
const MAX_PER_CALLER: usize = 10_000;

/// The limits of the window.
#[derive(Debug, Clone, Copy)]
pub struct WindowConfig {
    /// How long an answer is kept.
    pub keep: Duration,
    /// The most bytes of answers kept, in all.
    pub max_bytes: usize,
}

#[derive(Debug, Clone)]
enum Entry {
    InFlight {
        fingerprint: [u8; 32],
    },
    Done {
        fingerprint: [u8; 32],
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
}

#[derive(Default)]
struct Kept {
    entries: HashMap<(Arc<str>, String), Entry>,
    /// Keys answered, oldest first, with when.
    order: VecDeque<(Instant, (Arc<str>, String))>,
    per_caller: HashMap<Arc<str>, usize>,
    bytes: usize,
}

/// Answers kept by key.
pub struct IdempotencyWindow {
    config: WindowConfig,
    kept: Mutex<Kept>,
}

/// What to do with a request carrying a key.
enum Begun {
    /// Answer it as new; its answer is kept under the key.
    New,
    /// Give this answer again.
    Replay(Response),
    /// Refuse it with this problem.
    Refuse(ApiError),
}

impl IdempotencyWindow {
    /// An empty window.
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            kept: Mutex::new(Kept::default()),
        }
    }

    fn begin(&self, scope: (Arc<str>, String), fingerprint: [u8; 32]) -> Begun {
        let mut kept = self.kept.lock();
        self.expire(&mut kept, Instant::now());
        match kept.entries.get(&scope) {
            None => {
                kept.entries.insert(scope, Entry::InFlight { fingerprint });
                Begun::New
            }
            Some(Entry::InFlight { .. }) => Begun::Refuse(ApiError::conflict(
                "Idempotency-Key: a request with this key is still being answered; retry when it is done",
            )),
            Some(Entry::Done {
                fingerprint: first, ..
            }) if *first != fingerprint => Begun::Refuse(ApiError::unprocessable(
                "Idempotency-Key: this key was used for another request (another method, target or body); use a new key for a new request",
            )),
            Some(Entry::Done {
                status,
                content_type,
                body,
                ..
            }) => {
                let mut response = (*status, body.clone()).into_response();
                if let Some(content_type) = content_type {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, content_type.clone());
                }
                response
                    .headers_mut()
                    .insert(REPLAYED, HeaderValue::from_static("true"));
                Begun::Replay(response)
            }
        }
    }

    /// Keeps the answer of a request begun with [`Self::begin`], or forgets the key if the
    /// answer is not one to keep (`None`).
    fn finish(
        &self,
        scope: (Arc<str>, String),
        answer: Option<(StatusCode, Option<HeaderValue>, Bytes)>,
    ) {
        let mut kept = self.kept.lock();
        let Some(Entry::InFlight { fingerprint }) = kept.entries.get(&scope).cloned() else {
            return;
        };
        let Some((status, content_type, body)) = answer else {
            kept.entries.remove(&scope);
            return;
        };
        kept.bytes += body.len() + scope.1.len();
        *kept.per_caller.entry(scope.0.clone()).or_default() += 1;
        kept.order.push_back((Instant::now(), scope.clone()));
        kept.entries.insert(
            scope.clone(),
            Entry::Done {
                fingerprint,
                status,
                content_type,
                body,
            },
        );
        // Bounded: the oldest answers go first, past the bytes or the caller's count.
        while kept.bytes > self.config.max_bytes
            || kept.per_caller.get(&scope.0).copied().unwrap_or(0) > MAX_PER_CALLER
        {
            if !Self::forget_oldest(&mut kept) {
                break;
            }
        }
    }

    fn expire(&self, kept: &mut Kept, now: Instant) {
        while kept
            .order
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.config.keep)
        {
            Self::forget_oldest(kept);
        }
    }

    fn forget_oldest(kept: &mut Kept) -> bool {
        let Some((_, scope)) = kept.order.pop_front() else {
            return false;
        };
        if let Some(Entry::Done { body, .. }) = kept.entries.remove(&scope) {
            kept.bytes = kept.bytes.saturating_sub(body.len() + scope.1.len());
        }
        if let Some(n) = kept.per_caller.get_mut(&scope.0) {
            *n -= 1;
            if *n == 0 {
                kept.per_caller.remove(&scope.0);
            }
        }
        true
    }
}

/// Whether a request may carry a key: every write.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The key of a request, checked: 1 to 255 visible ASCII characters (the draft's key is a
/// string; quotes, as the draft writes it, are taken as part of it).
fn key_of(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_KEY_BYTES && k.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(key.to_string())),
        None => Err(ApiError::bad_parameter(format!(
            "Idempotency-Key: expected 1 to {MAX_KEY_BYTES} visible ASCII characters"
        ))),
    }
}

/// Answers `request` through `next`, or, if it carries an `Idempotency-Key` already used
/// by its caller, with the first answer (or a 409 or 422).
pub async fn answer(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !is_write(request.method()) {
        return next.run(request).await;
    }
    let key = match key_of(&request) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(request).await,
        Err(problem) => return problem.into_response(),
    };
    let owner = request
        .extensions()
        .get::<Caller>()
        .map_or_else(|| Caller::open().owner, |c| c.owner.clone());
    let streamed = request.uri().path() == "/v1/pois/import";
    let (parts, body) = request.into_parts();
    let mut fingerprint = Sha256::new()
        .chain_update(parts.method.as_str())
        .chain_update(b"\0")
        .chain_update(parts.uri.to_string())
        .chain_update(b"\0");
    let body = if streamed {
        // An import streams: its declared length and type stand for its body.
        for name in [header::CONTENT_LENGTH, header::CONTENT_TYPE] {
            fingerprint.update(parts.headers.get(&name).map_or(&b""[..], |v| v.as_bytes()));
            fingerprint.update(b"\0");
        }
        body
    } else {
        let limit = state
            .limits
            .max_body_bytes
            .max(state.limits.max_batch_bytes);
        match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => {
                fingerprint.update(&bytes);
                Body::from(bytes)
            }
            Err(_) => return ApiError::too_large(limit as u64).into_response(),
        }
    };
    let fingerprint: [u8; 32] = fingerprint.finalize().into();
    let scope = (owner.clone(), key.clone());
    let digest: [u8; 32] = Sha256::new()
        .chain_update(owner.as_bytes())
        .chain_update(b"\0")
        .chain_update(key.as_bytes())
        .finalize()
        .into();
    let shared = hex(&digest);
    // In a cluster, the first attempt may have been answered by another node.
    if let Some(replicator) = state.replicator() {
        match replicator.kept_answer(&shared).await {
            Ok(Some(kept)) => return replay_kept(&kept, fingerprint),
            Ok(None) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    match state.idempotency.begin(scope.clone(), fingerprint) {
        Begun::Replay(response) => return response,
        Begun::Refuse(problem) => return problem.into_response(),
        Begun::New => {}
    }
    // A cluster write names its stream message after the key.
    let response = crate::cluster::MESSAGE_KEY
        .scope(
            crate::cluster::MessageKey::new(digest),
            next.run(Request::from_parts(parts, body)),
        )
        .await;
    let status = response.status();
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || response
            .extensions()
            .get::<super::problem::Unsettled>()
            .is_some()
    {
        state.idempotency.finish(scope, None);
        return response;
    }
    let (parts, body) = response.into_parts();
    // Answers to writes are small (a record, a summary); a larger one is not kept.
    match axum::body::to_bytes(body, 1 << 20).await {
        Ok(bytes) => {
            let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
            if let Some(replicator) = state.replicator() {
                let kept = KeptAnswer {
                    fingerprint: hex(&fingerprint),
                    status: parts.status.as_u16(),
                    content_type: content_type
                        .as_ref()
                        .and_then(|v| v.to_str().ok())
                        .map(String::from),
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                };
                if let Ok(encoded) = serde_json::to_vec(&kept) {
                    replicator.keep_answer(&shared, encoded.into()).await;
                }
            }
            state
                .idempotency
                .finish(scope, Some((parts.status, content_type, bytes.clone())));
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            state.idempotency.finish(scope, None);
            ApiError::internal("an answer could not be read to keep it", &e).into_response()
        }
    }
}

/// An answer as a cluster keeps it for every node (answers to writes are JSON text).
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptAnswer {
    fingerprint: String,
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// The answer another node kept, given again, or a 422 if it was another request's.
fn replay_kept(kept: &[u8], fingerprint: [u8; 32]) -> Response {
    let Ok(kept) = serde_json::from_slice::<KeptAnswer>(kept) else {
        return ApiError::internal_message("a kept answer does not read").into_response();
    };
    if kept.fingerprint != hex(&fingerprint) {
        return ApiError::unprocessable(
            "Idempotency-Key: this key was used for another request (another method, target or body); use a new key for a new request",
        )
        .into_response();
    }
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    if let Some(content_type) = kept
        .content_type
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> IdempotencyWindow {
        IdempotencyWindow::new(WindowConfig {
            keep: Duration::from_secs(60),
            max_bytes: 1 << 20,
        })
    }

    fn scope(owner: &str, key: &str) -> (Arc<str>, String) {
        (owner.into(), key.into())
    }

    #[test]
    fn a_key_is_its_callers_and_answers_the_same_request_alike() {
        let w = window();
        assert!(matches!(w.begin(scope("a", "k"), [1; 32]), Begun::New));
        assert!(
            matches!(w.begin(scope("a", "k"), [1; 32]), Begun::Refuse(_)),
            "in flight"
        );
        w.finish(
            scope("a", "k"),
            Some((StatusCode::CREATED, None, Bytes::from_static(b"{}"))),
        );
        let Begun::Replay(answer) = w.begin(scope("a", "k"), [1; 32]) else {
            panic!("the first answer");
        };
        assert_eq!(answer.status(), StatusCode::CREATED);
        assert!(
            matches!(w.begin(scope("a", "k"), [2; 32]), Begun::Refuse(p) if p.status() == StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert!(
            matches!(w.begin(scope("b", "k"), [2; 32]), Begun::New),
            "another caller's key"
        );
    }

    #[test]
    fn an_answer_not_kept_leaves_the_key_free() {
        let w = window();
        assert!(matches!(w.begin(scope("a", "k"), [1; 32]), Begun::New));
        w.finish(scope("a", "k"), None);
        assert!(matches!(w.begin(scope("a", "k"), [1; 32]), Begun::New));
    }

    #[test]
    fn the_window_is_bounded_in_bytes_oldest_first() {
        let w = IdempotencyWindow::new(WindowConfig {
            keep: Duration::from_secs(60),
            max_bytes: 100,
        });
        for k in ["k1", "k2", "k3"] {
            assert!(matches!(w.begin(scope("a", k), [0; 32]), Begun::New));
            w.finish(
                scope("a", k),
                Some((StatusCode::OK, None, Bytes::from(vec![b'x'; 40]))),
            );
        }
        assert!(
            matches!(w.begin(scope("a", "k1"), [0; 32]), Begun::New),
            "forgotten"
        );
        assert!(matches!(
            w.begin(scope("a", "k3"), [0; 32]),
            Begun::Replay(_)
        ));
    }
}
