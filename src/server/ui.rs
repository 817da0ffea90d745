//! The map viewer: its page and the map library it uses, embedded in the binary
//! (`rust-embed`, from `ui/`), so that nothing is fetched from a CDN and no build step runs.
//! `GET /` leads to `/ui/`; `/ui/config.json` tells the page which tile server to use.
//! The files need no key (they hold no data); the page sends the key its user types with
//! every API call. `--no-ui` serves none of it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::problem::ApiError;

/// What the page needs to know from the server's configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UiConfig {
    /// A raster tile URL template (`{z}/{x}/{y}`), or `None` for the offline outline only.
    pub tiles: Option<String>,
    /// The tiles' attribution, as HTML.
    pub attribution: String,
}

#[derive(rust_embed::Embed)]
#[folder = "ui/"]
struct Files;

/// `GET /`: the viewer.
pub async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// `GET /ui/`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/config.json`.
pub async fn config(State(state): State<AppState>) -> Response {
    super::response::json_response(StatusCode::OK, &state.ui)
}

/// `GET /ui/{*path}`: one of the page's files.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Files::get(path) else {
        return ApiError::not_found(format!("no viewer file {path:?}")).into_response();
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag = HeaderValue::from_str(&etag).expect("hex is a valid header value");
    if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let content_type = HeaderValue::from_str(file.metadata.mimetype())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag),
            // Revalidated each time (a 304 when unchanged), so a new build is seen at once.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
