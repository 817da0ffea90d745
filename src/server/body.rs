//! Reading request bodies within limits: whole JSON bodies (size-capped, content type checked,
//! errors naming the JSON path at fault) and streamed bodies for imports (a byte cap enforced
//! as the bytes arrive, so an oversized upload is cut off rather than buffered).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::{ApiError, BodyTooLarge};

/// The media type of the `Content-Type` header as sent, without parameters.
fn content_type_as_sent(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?;
    Some(
        value
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim(),
    )
}

/// The media type of the `Content-Type` header, lowercased, without parameters.
pub fn content_type_essence(headers: &HeaderMap) -> Option<String> {
    content_type_as_sent(headers).map(str::to_ascii_lowercase)
}

/// Refuses a body whose declared content type is not JSON. A missing header is taken as JSON.
/// (Compared without lowercasing a copy: this runs on every single-update request.)
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(essence) = content_type_as_sent(headers) else {
        return Ok(());
    };
    let bytes = essence.as_bytes();
    let (prefix, suffix): (&[u8], &[u8]) = (b"application/", b"+json");
    let is_json = essence.eq_ignore_ascii_case("application/json")
        || (bytes.len() >= prefix.len() + suffix.len()
            && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
            && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "content-type: expected application/json, got {:?}",
            essence.to_ascii_lowercase()
        )))
    }
}

/// A request body read as one JSON object of type `T`, within the server's body limit (an
/// extractor over [`json_object`]).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        json_object(&parts.headers, body, state.limits.max_body_bytes)
            .await
            .map(Self)
    }
}

/// Reads the whole body (at most `limit` bytes) and deserializes it from a JSON object.
/// (serde's derive would also accept a struct written as an array, which no client means.)
pub async fn json_object<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    require_json(headers)?;
    // A body declared too large is refused before a byte of it is read: waiting for it
    // would hold the request until its deadline.
    check_declared_length(headers, limit as u64)?;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            ApiError::too_large(limit as u64)
        } else {
            ApiError::bad_body(format!("reading the body failed: {e}"))
        }
    })?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_body("body: expected a JSON object"));
    }
    let value = crate::json::from_slice_named(&bytes).map_err(|e| match e.path {
        Some(_) => ApiError::bad_body(e.to_string()),
        None => ApiError::bad_body(format!("body: {}", e.message)),
    })?;
    Ok(value)
}

/// How long a streamed body may go without sending a byte before it is cut off.
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The slowest a streamed body may arrive, on average, once [`BODY_RATE_GRACE`] has
/// passed: a client trickling a byte every few seconds cannot hold an import's place.
pub const BODY_MIN_RATE: u64 = 16 * 1024;

/// How long a streamed body has before [`BODY_MIN_RATE`] applies.
pub const BODY_RATE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The body as a stream of byte chunks that fails with [`BodyTooLarge`] once more than
/// `limit` bytes have arrived, or with a timeout when no byte arrives for
/// [`BODY_IDLE_TIMEOUT`] or, past [`BODY_RATE_GRACE`], the bytes average less than
/// [`BODY_MIN_RATE`] a second (a client trickling an upload cannot hold the server).
pub fn limited_stream(
    body: Body,
    limit: u64,
) -> impl Stream<Item = std::io::Result<axum::body::Bytes>> + Send + Unpin + 'static {
    let chunks = body.into_data_stream();
    let started = tokio::time::Instant::now();
    Box::pin(futures_util::stream::unfold(
        (chunks, 0u64, false),
        move |(mut chunks, mut seen, done)| async move {
            if done {
                return None;
            }
            let item = match tokio::time::timeout(BODY_IDLE_TIMEOUT, chunks.next()).await {
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no body data for 30 s",
                )),
                Ok(None) => return None,
                Ok(Some(Err(e))) => Err(std::io::Error::other(e)),
                Ok(Some(Ok(chunk))) => {
                    seen += chunk.len() as u64;
                    let elapsed = started.elapsed();
                    if seen > limit {
                        Err(std::io::Error::other(BodyTooLarge(limit)))
                    } else if elapsed > BODY_RATE_GRACE
                        && (seen as f64) / elapsed.as_secs_f64() < BODY_MIN_RATE as f64
                    {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "the body arrives at {:.0} bytes/s on average, under the {BODY_MIN_RATE} a stream must keep",
                                seen as f64 / elapsed.as_secs_f64()
                            ),
                        ))
                    } else {
                        Ok(chunk)
                    }
                }
            };
            let failed = item.is_err();
            Some((item, (chunks, seen, failed)))
        },
    ))
}

/// Refuses early a body whose declared length is over `limit`.
pub fn check_declared_length(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(ApiError::too_large(limit)),
        _ => Ok(()),
    }
}

/// A temporary file holding a spooled body; deleted when dropped.
pub struct Spool(tempfile::TempPath);

impl Spool {
    /// Where the body is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

/// Writes a body stream to a temporary file in `dir` (for readers that need to read twice).
pub async fn spool(
    stream: impl Stream<Item = std::io::Result<axum::body::Bytes>>,
    dir: &std::path::Path,
) -> Result<Spool, ApiError> {
    use tokio::io::AsyncWriteExt;
    let failed = |e: std::io::Error| ApiError::internal("spooling the import body failed", &e);
    let path = tempfile::Builder::new()
        .prefix("import-")
        .tempfile_in(dir)
        .map_err(failed)?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&path).await.map_err(failed)?;
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            match e.get_ref().and_then(|e| e.downcast_ref::<BodyTooLarge>()) {
                Some(BodyTooLarge(limit)) => ApiError::too_large(*limit),
                None => ApiError::bad_body(format!("reading the body failed: {e}")),
            }
        })?;
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.flush().await.map_err(failed)?;
    Ok(Spool(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_content_types_are_recognised_in_any_case() {
        assert!(require_json(&HeaderMap::new()).is_ok(), "no content type");
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "APPLICATION/VND.API+JSON",
            "application/+json",
        ] {
            assert!(require_json(&with_content_type(json)).is_ok(), "{json}");
        }
        for other in ["text/plain", "application/jsonx", "text/+json", "json", ""] {
            assert!(require_json(&with_content_type(other)).is_err(), "{other}");
        }
    }
}
