//! The map viewer: its page and the map library it uses, embedded in the binary
//! (`rust-embed`, from `ui/`), so that nothing is fetched from a CDN and no build step runs.
//! `GET /` leads to `/ui/`; `/ui/config.json` tells the page which tile server to use.
//! The files need no key (they hold no data); the page sends the key its user types with
//! every API call. `--no-ui` serves none of it.
//!
//! Each file is gzipped once, in the background when the server starts, and served gzipped
//! to clients that accept it: the page is 308 KB raw and 98 KB gzipped, and a user on a
//! slow link should not pay for the difference on every load.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

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

/// One embedded file, ready to serve.
struct Asset {
    content_type: HeaderValue,
    etag: HeaderValue,
    raw: &'static [u8],
    /// The gzipped bytes, when smaller than the raw ones.
    gzip: Option<Vec<u8>>,
}

/// Gzips the files on a thread of their own, so that the first page load does not wait
/// for it (in the debug build the tests use, gzipping on the first request made the page
/// interactive 560 ms after navigation instead of 285).
pub fn prepare() {
    std::thread::Builder::new()
        .name("proxima-ui".into())
        .spawn(|| {
            assets();
        })
        .map(drop)
        .unwrap_or_else(|e| tracing::warn!("could not gzip the viewer's files ahead: {e}"));
}

/// Every embedded file by path, built once.
fn assets() -> &'static HashMap<String, Asset> {
    static ASSETS: OnceLock<HashMap<String, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        Files::iter()
            .filter_map(|path| {
                let file = Files::get(&path)?;
                let hash: String = file.metadata.sha256_hash()[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let raw: &'static [u8] = match file.data {
                    std::borrow::Cow::Borrowed(bytes) => bytes,
                    // Read from disk (a debug build without `debug-embed`): kept for the
                    // process's life, as the embedded bytes are.
                    std::borrow::Cow::Owned(bytes) => Vec::leak(bytes),
                };
                let asset = Asset {
                    content_type: HeaderValue::from_str(file.metadata.mimetype())
                        .unwrap_or(HeaderValue::from_static("application/octet-stream")),
                    etag: HeaderValue::from_str(&format!("\"{hash}\""))
                        .expect("hex is a valid header value"),
                    gzip: gzipped(raw).filter(|g| g.len() < raw.len()),
                    raw,
                };
                Some((path.into_owned(), asset))
            })
            .collect()
    })
}

fn gzipped(raw: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(raw).ok()?;
    encoder.finish().ok()
}

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

/// One of the viewer's files as an answer (a 304 when the client has it).
pub fn file_response(path: &str, headers: &HeaderMap) -> Response {
    serve(path, headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = assets().get(path) else {
        return ApiError::not_found(format!("no viewer file {path:?}")).into_response();
    };
    let common = [
        (header::ETAG, asset.etag.clone()),
        // Revalidated each time (a 304 when unchanged), so a new build is seen at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    if headers.get(header::IF_NONE_MATCH) == Some(&asset.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = [(header::CONTENT_TYPE, asset.content_type.clone())];
    match &asset.gzip {
        Some(gzip) if accepts_gzip(headers) => (
            common,
            content_type,
            [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            gzip.clone(),
        )
            .into_response(),
        _ => (common, content_type, asset.raw).into_response(),
    }
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            value.parse().expect("valid header"),
        );
        headers
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_file_is_served_and_the_gzip_is_the_file() {
        let assets = assets();
        assert!(assets.contains_key("index.html") && assets.contains_key("app.js"));
        for (path, asset) in assets {
            if let Some(gzip) = &asset.gzip {
                let mut back = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut back)
                    .expect("valid gzip");
                assert_eq!(back, asset.raw, "{path}");
            }
        }
    }
}
