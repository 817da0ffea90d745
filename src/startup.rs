//! Start-up and the server's life: binds the listener, recovers the data directory in the
//! background (loading the bundled sample on a fresh one), starts the periodic tasks
//! (expiry sweeps, snapshots, metrics upkeep), serves until told to stop, and then writes
//! a final snapshot and closes the log. `proxima serve` and the tests start here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cluster::{self, ClusterConfig};
use crate::config::ServeConfig;
use crate::engine::{self, Engine, EngineConfig, LiveConfig};
use crate::events::EventConfig;
use crate::persist::wal::WalOptions;
use crate::pois::CursorKey;
use crate::server::{self, AppState, Limits};
use crate::travellers::TravellerConfig;
use crate::{clock, sample};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data directory could not be created.
    #[error("data dir: {0}")]
    DataDir(std::io::Error),
    /// The keys file is unusable.
    #[error("{0}")]
    Keys(#[from] server::auth::KeysError),
    /// The traveller-token keys are unusable.
    #[error("{0}")]
    Tokens(#[from] server::auth::TokensError),
    /// An open server was asked to listen beyond this machine.
    #[error(
        "refusing to listen on {0} without keys: anyone who can reach it could read and change everything; pass --keys FILE, or --insecure to run open anyway"
    )]
    Insecure(std::net::SocketAddr),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The state in the data directory could not be recovered.
    #[error("recovery failed: {0}")]
    Recovery(engine::EngineError),
    /// The node could not join its cluster.
    #[error(transparent)]
    Cluster(cluster::JoinError),
    /// Recovery panicked: a defect, met on what the data directory holds. The server stops
    /// rather than answer 503 for ever.
    #[error("recovery panicked: {0}")]
    RecoveryPanicked(String),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
    /// The final snapshot or the log's close failed.
    #[error("shutdown: {0}")]
    Shutdown(engine::EngineError),
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

/// Binds, then recovers the data directory and serves until `shutdown` completes; see
/// [`start_with_clock`].
pub async fn start(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, RunError> {
    start_with_clock(config, Arc::new(clock::SystemClock), shutdown).await
}

/// Binds, then in the background recovers the data directory (and, on a directory with no
/// state, loads the bundled sample unless `no_sample`), while `/readyz` answers 503. Serves
/// until `shutdown` completes or recovery fails; then lets requests in flight finish, writes
/// a snapshot and closes the log.
pub async fn start_with_clock(
    mut config: ServeConfig,
    clock: Arc<dyn clock::Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, RunError> {
    // The demo runs on a data directory of its own, removed when the server stops: its
    // simulated travellers never reach a real one.
    let demo_dir = if config.demo {
        let dir = tempfile::Builder::new()
            .prefix("proxima-demo-")
            .tempdir()
            .map_err(RunError::DataDir)?;
        tracing::info!(data_dir = %dir.path().display(), "demo: simulated travellers on a temporary data dir");
        config.data_dir = dir.path().to_path_buf();
        Some(dir)
    } else {
        None
    };
    let keys = config
        .keys
        .as_deref()
        .map(server::auth::Keys::load)
        .transpose()?
        .map(Arc::new);
    let tokens = server::auth::Tokens::load(&server::auth::TokenConfig {
        hs256_secret_file: config.jwt_hs256_secret_file.clone(),
        public_key_file: config.jwt_public_key_file.clone(),
        jwks_file: config.jwks_file.clone(),
        audience: config.jwt_audience.clone(),
        issuer: config.jwt_issuer.clone(),
        leeway_s: config.jwt_leeway,
    })?
    .map(Arc::new);
    if keys.is_none() && tokens.is_none() && !config.listen.ip().is_loopback() && !config.insecure {
        return Err(RunError::Insecure(config.listen));
    }
    let tmp_dir = config.data_dir.join("tmp");
    fs_err::create_dir_all(&tmp_dir).map_err(RunError::DataDir)?;
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
        live: LiveConfig {
            quotas: crate::fences::FenceQuotas {
                max_fences: to_usize(config.max_fences),
                max_vertices: to_usize(config.max_fence_vertices),
                owner_fences: to_usize(config.max_fences_per_owner),
                owner_vertices: to_usize(config.max_vertices_per_owner),
                roaming_per_traveller: to_usize(config.max_roaming_per_traveller),
                max_roaming_radius_m: config.max_roaming_radius_m,
            },
            events: EventConfig {
                retention_ms: i64::try_from(config.event_retention.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
                max_retained: to_usize(config.event_retention_max),
                subscriber_buffer: to_usize(config.subscriber_buffer),
                max_subscribers: to_usize(config.max_subscribers),
            },
        },
    });
    let state = AppState::from(server::Shared {
        engine: Arc::new(engine),
        ready: Arc::new(AtomicBool::new(false)),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            max_import_bytes: config.max_import_bytes,
            max_batch_bytes: config.max_batch_bytes,
            request_timeout: std::time::Duration::from_secs(config.request_timeout.max(1)),
            max_area_vertices: usize::try_from(config.max_area_vertices).unwrap_or(usize::MAX),
            max_fences_per_stream: to_usize(config.max_fences_per_stream),
            max_watch_snapshot: to_usize(config.max_watch_snapshot),
            max_subscribers: to_usize(config.max_subscribers),
            max_clock_skew_ms: i64::try_from(config.max_clock_skew.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            map_frame: std::time::Duration::from_millis(config.map_frame_ms),
        },
        tmp_dir,
        keys,
        tokens,
        started: std::time::Instant::now(),
        streams: Arc::new(server::sse::StreamSlots::new(to_usize(
            config.max_streams_per_key,
        ))),
        maps: Arc::new(server::sse::StreamSlots::new(to_usize(
            config.max_maps_per_owner,
        ))),
        imports: server::imports::Imports::new(to_usize(config.max_imports))
            .map_err(RunError::Serve)?,
        idempotency: server::idempotency::IdempotencyWindow::new(
            server::idempotency::WindowConfig {
                keep: std::time::Duration::from_secs(config.idempotency_window),
                max_bytes: config.idempotency_max_bytes,
            },
        ),
        stopping: tokio_util::sync::CancellationToken::new(),
        ui: (!config.no_ui).then(|| server::ui::UiConfig {
            tiles: (config.ui_tiles != "none" && !config.ui_tiles.is_empty())
                .then(|| config.ui_tiles.clone()),
            attribution: config.ui_tiles_attribution.clone(),
        }),
    });
    if config.cluster.is_empty() {
        // A single node judges fences and live maps off the write path.
        state.engine.judge_in_background();
    }
    let listener = server::bind(config.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;

    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<RunError>();
    let loader = state.clone();
    let cluster = (!config.cluster.is_empty()).then(|| ClusterConfig {
        urls: config.cluster.clone(),
        name: config.cluster_name.clone(),
        replicas: config.cluster_replicas,
        max_wait: std::time::Duration::from_secs(config.max_wait),
        max_lag: std::time::Duration::from_secs(config.max_lag),
        snapshot_every: (config.snapshot_every > 0)
            .then(|| std::time::Duration::from_secs(config.snapshot_every)),
        answers_for: std::time::Duration::from_secs(config.idempotency_window),
        export_events: config.cluster_events.then(|| {
            (
                server::event_encoder(),
                std::time::Duration::from_secs(config.event_retention),
            )
        }),
    });
    let recovery = if let Some(cluster) = cluster {
        // A cluster node's state is the stream's: no local log to recover and no sample
        // to load; `/readyz` follows how far behind the stream the node is.
        let stopping = state.stopping.clone();
        let data_dir = config.data_dir.clone();
        tokio::spawn(async move {
            match cluster::follow(loader.engine.clone(), cluster, data_dir, stopping).await {
                Ok(_) => {
                    loader.ready.store(true, Ordering::Release);
                    true
                }
                Err(e) => {
                    let failure = RunError::Cluster(e);
                    tracing::error!(error = %failure, "joining the cluster failed; stopping");
                    let _ = failed_tx.send(failure);
                    false
                }
            }
        })
    } else {
        tokio::task::spawn_blocking(move || {
            let options = WalOptions {
                fsync: config.fsync,
                ..WalOptions::default()
            };
            let damaged = if config.start_empty_if_damaged {
                engine::DamagedState::MoveAsideAndStartEmpty
            } else {
                engine::DamagedState::Refuse
            };
            let recovered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                loader
                    .engine
                    .recover_with(&config.data_dir, options, damaged)
            }));
            let failure = match recovered {
                Ok(Ok(report)) => {
                    if report.fresh && !config.no_sample {
                        load_sample(&loader.engine);
                    }
                    loader.ready.store(true, Ordering::Release);
                    return true;
                }
                Ok(Err(e)) => RunError::Recovery(e),
                Err(panic) => RunError::RecoveryPanicked(panic_message(panic.as_ref())),
            };
            tracing::error!(error = %failure, "recovery failed; stopping");
            let _ = failed_tx.send(failure);
            false
        })
    };

    tokio::spawn(sweep_travellers(state.engine.clone(), ttl_ms));
    tokio::spawn(expire_fences(state.engine.clone(), state.ready.clone()));
    tokio::spawn(server::upkeep_metrics(std::time::Duration::from_secs(5)));
    if demo_dir.is_some() {
        tokio::spawn(run_demo(
            state.engine.clone(),
            state.ready.clone(),
            state.stopping.clone(),
        ));
    }
    if config.snapshot_every > 0 && config.cluster.is_empty() {
        tokio::spawn(snapshot_periodically(
            state.engine.clone(),
            config.snapshot_every,
        ));
    }

    let connection_limits = server::listener::ConnectionLimits {
        max_connections: config.max_connections.max(1),
        max_connections_per_address: config
            .max_connections_per_address
            .unwrap_or(config.max_connections / 4)
            .max(1),
        header_read_timeout: std::time::Duration::from_secs(config.header_read_timeout.max(1)),
        max_header_bytes: config.max_header_bytes,
    };
    let serving = state.clone();
    let done = tokio::spawn(async move {
        // Stop on the shutdown signal, or when recovery fails; remember which.
        let (why_tx, why_rx) = tokio::sync::oneshot::channel::<Option<RunError>>();
        let stop = async move {
            let why = tokio::select! {
                () = shutdown => None,
                Ok(e) = failed_rx => Some(e),
            };
            let _ = why_tx.send(why);
        };
        server::serve(listener, serving.clone(), connection_limits, stop)
            .await
            .map_err(RunError::Serve)?;
        if let Ok(Some(failure)) = why_rx.await {
            return Err(failure);
        }
        if recovery.await.unwrap_or(false) {
            let engine = serving.engine.clone();
            tokio::task::spawn_blocking(move || engine.close())
                .await
                .map_err(|e| RunError::Serve(std::io::Error::other(e)))?
                .map_err(RunError::Shutdown)?;
        }
        drop(demo_dir);
        Ok(())
    });
    Ok(Started { addr, state, done })
}

/// What a panic said, if it said it as text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

fn load_sample(engine: &Engine) {
    let started = std::time::Instant::now();
    let loaded = sample::load(engine);
    match loaded {
        Ok(pois) => tracing::info!(
            pois,
            millis = started.elapsed().as_millis() as u64,
            "loaded the bundled sample data"
        ),
        Err(e) => tracing::error!(error = %e, "could not load the bundled sample data"),
    }
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

/// Every second, travellers whose position passed the time-to-live leave their fences
/// (an exit is due when the age passes, not when the sweeper frees the memory), and events
/// past the retention window are dropped. Waits for recovery, which judges afresh.
async fn expire_fences(engine: Arc<Engine>, ready: Arc<AtomicBool>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !ready.load(Ordering::Acquire) {
            continue;
        }
        let engine = engine.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || engine.expire_fences()).await {
            tracing::error!(error = %e, "fence expiry failed");
        }
    }
}

/// How many travellers `--demo` simulates.
const DEMO_TRAVELLERS: usize = 300;

/// Runs the demo's travellers once the data is in, until the server begins to stop.
async fn run_demo(
    engine: Arc<Engine>,
    ready: Arc<AtomicBool>,
    stopping: tokio_util::sync::CancellationToken,
) {
    while !ready.load(Ordering::Acquire) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::select! {
        () = crate::demo::run(engine, DEMO_TRAVELLERS) => {}
        () = stopping.cancelled() => {}
    }
}

/// Writes a snapshot every `secs` seconds.
async fn snapshot_periodically(engine: Arc<Engine>, secs: u64) {
    let period = std::time::Duration::from_secs(secs);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let engine = engine.clone();
        match tokio::task::spawn_blocking(move || engine.snapshot()).await {
            Ok(Ok(_))
            | Ok(Err(engine::EngineError::NotPersistent | engine::EngineError::SnapshotBusy)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "periodic snapshot failed"),
            Err(e) => tracing::error!(error = %e, "periodic snapshot panicked"),
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
