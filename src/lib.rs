//! Proxima: an in-memory geospatial proximity server.
//!
//! Layers, from the edge inwards (a layer uses only those below it):
//!
//! - [`server`]: HTTP (axum on hyper + tokio): routes, wire types, limits, problem+json.
//! - [`engine`]: the one state and its locking policy; every change is a [`engine::Mutation`].
//! - [`pois`]: the POI collection: records, R-trees over unit vectors, queries, cursors.
//! - [`travellers`]: moving points in geohash cells on sharded maps, trails, sharing, TTL.
//! - [`import`]: readers turning dumps into POIs and per-record errors.
//! - [`geometry`] and [`ids`]: pure functions over coordinates, cells and identifiers;
//!   [`clock`]: time, injected.
//!
//! [`run`] wires them together for `proxima serve`.

pub mod bench;
pub mod clock;
pub mod config;
pub mod engine;
pub mod geometry;
pub mod ids;
pub mod import;
pub mod pois;
pub mod sample;
pub mod server;
pub mod travellers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use config::ServeConfig;
use engine::{Engine, EngineConfig};
use pois::CursorKey;
use server::{AppState, Limits};
use travellers::TravellerConfig;

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
    start_with_clock(config, Arc::new(clock::SystemClock), shutdown).await
}

/// [`start`] with a given clock (tests pass a [`clock::ManualClock`]).
pub async fn start_with_clock(
    config: ServeConfig,
    clock: Arc<dyn clock::Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, RunError> {
    fs_err::create_dir_all(&config.data_dir).map_err(RunError::DataDir)?;
    let cursor_key = match &config.cursor_secret {
        Some(secret) => CursorKey::from_secret(secret.as_bytes()),
        None => CursorKey::random(),
    };
    let ttl_ms = i64::try_from(config.traveller_ttl.saturating_mul(1000)).unwrap_or(i64::MAX);
    let engine = Engine::new(EngineConfig {
        cursor_key,
        clock,
        travellers: TravellerConfig {
            trail_capacity: usize::try_from(config.trail_length).unwrap_or(usize::MAX),
            ttl_ms,
        },
    });
    let state = AppState {
        engine: Arc::new(engine),
        ready: Arc::new(AtomicBool::new(false)),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            max_import_bytes: config.max_import_bytes,
            max_batch_bytes: config.max_batch_bytes,
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

    tokio::spawn(sweep_travellers(state.engine.clone(), ttl_ms));

    let serving = state.clone();
    let done = tokio::spawn(async move {
        server::serve(listener, serving, shutdown)
            .await
            .map_err(RunError::Serve)
    });
    Ok(Started { addr, state, done })
}

/// Frees expired travellers' memory in the background: every tenth of the time-to-live
/// (between 1 s and 30 s), on a blocking thread, a shard at a time. Readers never wait for
/// it: they treat an expired position as gone whether or not it was swept.
async fn sweep_travellers(engine: Arc<Engine>, ttl_ms: i64) {
    let every_ms = (ttl_ms / 10).clamp(1_000, 30_000);
    let mut ticks =
        tokio::time::interval(std::time::Duration::from_millis(every_ms.unsigned_abs()));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let engine = engine.clone();
        match tokio::task::spawn_blocking(move || engine.sweep_travellers()).await {
            Ok(0) => {}
            Ok(dropped) => tracing::debug!(dropped, "swept expired travellers"),
            Err(e) => tracing::error!(error = %e, "traveller sweep failed"),
        }
    }
}
