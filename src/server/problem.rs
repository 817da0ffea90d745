//! Errors at the edge: every failure becomes an RFC 9457 `application/problem+json` body
//! with a stable `type`, a `title`, the `status` and a `detail` naming the field at fault.
//!
//! Library errors are mapped here and only here, each by one exhaustive `match`, so adding a
//! variant to a layer's error enum fails to compile until it has an HTTP meaning.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cluster::ClusterError;
use crate::devices::DeviceError;
use crate::engine::EngineError;
use crate::import::{ImportError, RecordError};
use crate::trips::TripError;
use crate::zones::ZoneError;

/// Marks a response whose 5xx status is part of normal operation, not a failure worth a
/// warning in the log: a `not-ready` answer while the server loads its data (load
/// balancers poll `/readyz` through a whole recovery), and a `routes-behind` refusal (back
/// pressure under overload, logged once an episode by the engine, not once a request).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedUnavailable;

/// Marks an answer that does not settle its request (a retried idempotent write whose
/// first answer is still to be kept): not to be given again to later retries.
#[derive(Debug, Clone, Copy)]
pub struct Unsettled;

/// The problem type of [`EngineError::RoutesBehind`].
const ROUTES_BEHIND: &str = "routes-behind";

/// The problem type of [`ClusterError::AlreadyApplied`].
const ALREADY_APPLIED: &str = "already-applied";

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Option<Vec<RecordError>>,
}

/// The problem type of a request made before the server is ready.
const NOT_READY: &str = "not-ready";

impl ApiError {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: None,
        }
    }

    /// The same problem, its detail followed by `suffix` (what else the caller should know).
    pub fn with_detail_suffix(mut self, suffix: &str) -> Self {
        self.detail.push_str(suffix);
        self
    }

    /// 400: a query parameter is missing, repeated, unknown or out of range.
    pub fn bad_parameter(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
            detail,
        )
    }

    /// 400: the request body is not what the route takes.
    pub fn bad_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "Invalid request body",
            detail,
        )
    }

    /// 404: no such resource (or route).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405: the route exists but not with this method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            detail,
        )
    }

    /// 413: the body is larger than the route accepts.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!("the request body must be at most {limit} bytes"),
        )
    }

    /// 415: the body's content type is not one the route takes.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            detail,
        )
    }

    /// 401: no key, or a key that is not ours.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: the key lacks the scope the route needs.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 429: the key's rate is spent.
    pub fn rate_limited(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            detail,
        )
    }

    /// 409: the request conflicts with one being answered or with the state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 422: the request is well formed but cannot be taken as it is.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "Unprocessable request",
            detail,
        )
    }

    /// 429: the key holds as many event streams as it may.
    pub fn too_many_streams(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-streams",
            "Too many streams",
            detail,
        )
    }

    /// 503: the server is at a capacity limit (event subscribers); retry later.
    pub fn busy(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Server busy",
            detail,
        )
    }

    /// 414: the URL is longer than the server accepts.
    pub fn uri_too_long(limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!("the request target must be at most {limit} bytes"),
        )
    }

    /// 503: the request took longer than the server allows.
    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed-out",
            "Request timed out",
            format!(
                "the request took longer than {} s; nothing was acknowledged",
                limit.as_secs_f64()
            ),
        )
    }

    /// 503: the server is not ready yet.
    pub fn not_ready() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            NOT_READY,
            "Not ready",
            "the server is still loading its data",
        )
    }

    /// 503: a cluster node is too far behind its stream to be ready.
    pub fn lagging(detail: String) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            NOT_READY,
            "Not ready",
            detail,
        )
    }

    /// 500 for a failure with nothing more to log than `context`.
    pub fn internal_message(context: &str) -> Self {
        Self::internal(context, &"")
    }

    /// 500: a bug or an environment failure; the detail is logged, not shown.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed to complete the request; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::CategoryLimit(e) => Self::new(
                StatusCode::CONFLICT,
                "category-limit",
                "Too many categories",
                format!("category: {e}"),
            ),
            EngineError::Cursor(e) => Self::bad_parameter(format!("cursor: {e}")),
            EngineError::FenceLimit(e) if e.is_bad_request() => Self::bad_body(e.to_string()),
            EngineError::FenceLimit(e) => Self::new(
                StatusCode::CONFLICT,
                "fence-limit",
                "Fence limit",
                e.to_string(),
            ),
            EngineError::NotVisible { .. } => Self::not_found(e.to_string()),
            EngineError::Heatmap(e) => Self::bad_parameter(e.to_string()),
            EngineError::Trip(e) => match e {
                TripError::NotFound(_) => Self::not_found(e.to_string()),
                TripError::Follower(_) => Self::bad_parameter(e.to_string()),
                TripError::Overlap { .. } => Self::new(
                    StatusCode::CONFLICT,
                    "trip-overlap",
                    "Trips overlap",
                    e.to_string(),
                ),
                TripError::OtherTraveller { .. } => Self::new(
                    StatusCode::CONFLICT,
                    "trip-id-taken",
                    "Trip id taken",
                    e.to_string(),
                ),
                TripError::Limit { .. } => Self::new(
                    StatusCode::CONFLICT,
                    "trip-limit",
                    "Trip limit",
                    e.to_string(),
                ),
            },
            EngineError::Device(e) => match e {
                DeviceError::Traveller(_) | DeviceError::Name(_) => Self::bad_body(e.to_string()),
                DeviceError::Limit => Self::new(
                    StatusCode::CONFLICT,
                    "device-limit",
                    "Device limit",
                    e.to_string(),
                ),
            },
            EngineError::Zone(e) => match e {
                ZoneError::Limit => Self::new(
                    StatusCode::CONFLICT,
                    "privacy-zone-limit",
                    "Privacy zone limit",
                    e.to_string(),
                ),
                ZoneError::Id(_) | ZoneError::Traveller(_) => Self::bad_parameter(e.to_string()),
                ZoneError::Area(_) => Self::bad_body(e.to_string()),
            },
            EngineError::RouteTooLong { .. } => Self::bad_parameter(e.to_string()),
            EngineError::RoutesBehind => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ROUTES_BEHIND,
                "Route store behind",
                e.to_string(),
            ),
            EngineError::Routes(e) => {
                tracing::error!(error = %e, "route store failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Storage unavailable",
                    "the route store could not be read; try again",
                )
            }
            EngineError::Storage(e) => {
                tracing::error!(error = %e, "storage failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Storage unavailable",
                    "the change could not be made durable; it was not acknowledged",
                )
            }
            EngineError::SnapshotBusy => Self::new(
                StatusCode::CONFLICT,
                "snapshot-in-progress",
                "Snapshot in progress",
                "a snapshot is already being written; try again when it finishes",
            ),
            EngineError::Cluster(e) => Self::from(e),
            EngineError::FencesCatchingUp => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "catching-up",
                "Catching up",
                e.to_string(),
            ),
            EngineError::Replicated(_) => Self::internal("a stream record failed", &e),
            EngineError::NotPersistent
            | EngineError::DataDirLocked(_)
            | EngineError::UnreadableSnapshots { .. } => Self::internal("engine misconfigured", &e),
            EngineError::StrictImport {
                skipped,
                first,
                errors,
            } => {
                let mut problem = Self::new(
                    StatusCode::BAD_REQUEST,
                    "import-rejected",
                    "Import rejected",
                    format!(
                        "strict import: {skipped} bad record(s), nothing was imported; first at {}: {}",
                        first.location, first.reason
                    ),
                );
                problem.errors = Some(errors);
                problem
            }
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Io(io) => {
                match io.get_ref().and_then(|e| e.downcast_ref::<BodyTooLarge>()) {
                    Some(BodyTooLarge(limit)) => Self::too_large(*limit),
                    None => Self::bad_body(format!("reading the body failed: {io}")),
                }
            }
            ImportError::Malformed(detail) => Self::bad_body(detail),
        }
    }
}

/// The marker error a size-limited body stream fails with, so the limit maps to 413 even
/// after passing through a reader.
#[derive(Debug, thiserror::Error)]
#[error("the request body exceeds {0} bytes")]
pub struct BodyTooLarge(pub u64);

#[derive(serde::Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<super::dto::RecordErrorOut<'a>>>,
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "record-too-large",
                "Write too large for the cluster",
                e.to_string(),
            ),
            ClusterError::AlreadyApplied(_) => Self::new(
                StatusCode::CONFLICT,
                ALREADY_APPLIED,
                "Already applied",
                e.to_string(),
            ),
            ClusterError::Behind { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "behind",
                "Node behind",
                e.to_string(),
            ),
            ClusterError::Unavailable(..)
            | ClusterError::NotApplied(..)
            | ClusterError::Busy(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster-unavailable",
                "Cluster unavailable",
                e.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            kind: format!("/problems/{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: self
                .errors
                .as_ref()
                .map(|errors| errors.iter().map(Into::into).collect()),
        };
        let bytes = serde_json::to_vec(&body).expect("a problem always serializes");
        let mut response = (self.status, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.slug == NOT_READY || self.slug == ROUTES_BEHIND {
            response.extensions_mut().insert(ExpectedUnavailable);
        }
        if self.slug == ALREADY_APPLIED {
            response.extensions_mut().insert(Unsettled);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            // Every 503 is worth retrying: the server is loading, busy, or waiting on the
            // cluster; a 429 once a place comes free (a limited key's 429 says when).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_ready_is_marked_as_an_expected_unavailability() {
        let expected = |e: ApiError| {
            e.into_response()
                .extensions()
                .get::<ExpectedUnavailable>()
                .is_some()
        };
        assert!(expected(ApiError::not_ready()));
        assert!(!expected(ApiError::timed_out(
            std::time::Duration::from_secs(1)
        )));
        assert!(!expected(ApiError::internal("test", &"boom")));
    }

    #[test]
    fn a_write_refused_while_routes_are_behind_is_a_503_to_retry() {
        let response = ApiError::from(EngineError::RoutesBehind).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );
        assert!(
            response.extensions().get::<ExpectedUnavailable>().is_some(),
            "back pressure, not a failure: not a warning a request"
        );
    }
}
