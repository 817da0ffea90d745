//! Proxima: an in-memory geospatial proximity server.
//!
//! Layers, from the edge inwards (a layer uses only those below it):
//!
//! - [`server`]: HTTP (axum on hyper + tokio): routes, wire types, limits, problem+json.
//! - [`engine`]: the one state and its locking policy; every change is a [`engine::Mutation`].
//! - [`pois`]: the POI collection: records, R-trees over unit vectors, queries, cursors.
//! - [`import`]: readers turning dumps into POIs and per-record errors.
//! - [`geometry`] and [`ids`]: pure functions over coordinates and identifiers.
//!
//! [`run`] wires them together for `proxima serve`.

pub mod config;
pub mod engine;
pub mod geometry;
pub mod ids;
pub mod import;
pub mod pois;
pub mod sample;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use config::ServeConfig;
use engine::Engine;
use pois::CursorKey;
use server::{AppState, Limits};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data directory could not be created.
    #[error("data dir: {0}")]
    DataDir(std::io::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// A server that has bound its address and is starting to serve.
pub struct Started {
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// Shared state, for embedding and tests.
    pub state: AppState,
    /// Completes when the server has stopped.
    pub done: tokio::task::JoinHandle<Result<(), RunError>>,
}

/// Binds, then serves in a background task until `shutdown` completes. The bundled sample is
/// loaded in the background (unless `no_sample`); `/readyz` answers 503 until it is in.
pub async fn start(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, RunError> {
    fs_err::create_dir_all(&config.data_dir).map_err(RunError::DataDir)?;
    let cursor_key = match &config.cursor_secret {
        Some(secret) => CursorKey::from_secret(secret.as_bytes()),
        None => CursorKey::random(),
    };
    let state = AppState {
        engine: Arc::new(Engine::new(cursor_key)),
        ready: Arc::new(AtomicBool::new(false)),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            max_import_bytes: config.max_import_bytes,
        },
    };
    let listener = server::bind(config.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;

    let loader = state.clone();
    let no_sample = config.no_sample;
    tokio::task::spawn_blocking(move || {
        if !no_sample {
            let started = std::time::Instant::now();
            match sample::load(&loader.engine) {
                Ok(summary) => tracing::info!(
                    pois = summary.imported,
                    millis = started.elapsed().as_millis() as u64,
                    "loaded the bundled sample data"
                ),
                Err(e) => tracing::error!(error = %e, "could not load the bundled sample data"),
            }
        }
        loader.ready.store(true, Ordering::Release);
    });

    let serving = state.clone();
    let done = tokio::spawn(async move {
        server::serve(listener, serving, shutdown)
            .await
            .map_err(RunError::Serve)
    });
    Ok(Started { addr, state, done })
}
