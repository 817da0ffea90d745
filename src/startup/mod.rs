//! Start-up and the server's life, in named steps: builds the state from the command line
//! ([`state`]), binds the listener, recovers the data directory or joins the cluster in
//! the background ([`recovery`]), starts the periodic tasks ([`periodic`]), serves until
//! told to stop, and then writes a final snapshot and closes the log. `proxima serve` and
//! the tests start here.

mod periodic;
mod recovery;
mod state;

use std::sync::Arc;

use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock;
use crate::cluster;
use crate::config::ServeConfig;
use crate::engine;
use crate::server::{self, AppState};

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
/// state, loads the bundled sample unless `no_sample`) or joins the cluster, while
/// `/readyz` answers 503. Serves until `shutdown` completes or recovery fails; then lets
/// requests in flight finish, writes a snapshot and closes the log.
pub async fn start_with_clock(
    mut config: ServeConfig,
    clock: Arc<dyn clock::Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, RunError> {
    let demo_dir = demo_data_dir(&mut config)?;
    let credentials = state::credentials(&config)?;
    let tmp_dir = config.data_dir.join("tmp");
    fs_err::create_dir_all(&tmp_dir).map_err(RunError::DataDir)?;
    let state = state::shared(&config, state::engine(&config, clock), credentials, tmp_dir)?;
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
    let (failed_tx, failed_rx) = oneshot::channel::<RunError>();
    let recovery = match recovery::cluster_config(&config) {
        Some(cluster) => recovery::join_cluster(&state, cluster, &config, failed_tx),
        None => recovery::recover_data_dir(&state, &config, failed_tx),
    };
    periodic::spawn(&state, &config, demo_dir.is_some().then_some(addr));
    let serving = Serving {
        listener,
        state: state.clone(),
        limits: state::connection_limits(&config),
        recovery,
        failed: failed_rx,
        demo_dir,
    };
    let done = tokio::spawn(serving.until(shutdown));
    Ok(Started { addr, state, done })
}

/// `--demo` runs on a data directory of its own, removed when the server stops: its
/// simulated travellers never reach a real one.
fn demo_data_dir(config: &mut ServeConfig) -> Result<Option<TempDir>, RunError> {
    if !config.demo {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("proxima-demo-")
        .tempdir()
        .map_err(RunError::DataDir)?;
    tracing::info!(data_dir = %dir.path().display(), "demo: simulated travellers on a temporary data dir");
    config.data_dir = dir.path().to_path_buf();
    Ok(Some(dir))
}

/// A bound server, with its recovery under way.
struct Serving {
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: server::listener::ConnectionLimits,
    /// Gives whether the state was recovered (or the cluster joined).
    recovery: JoinHandle<bool>,
    /// Told if recovery failed.
    failed: oneshot::Receiver<RunError>,
    demo_dir: Option<TempDir>,
}

impl Serving {
    /// Serves until `shutdown` completes or recovery fails (remembering which), lets the
    /// requests in flight finish, then, if the state was recovered, writes the final
    /// snapshot and closes the log.
    async fn until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let Self {
            listener,
            state,
            limits,
            recovery,
            failed,
            demo_dir,
        } = self;
        let (why_tx, why_rx) = oneshot::channel::<Option<RunError>>();
        let stop = async move {
            let why = tokio::select! {
                () = shutdown => None,
                Ok(e) = failed => Some(e),
            };
            let _ = why_tx.send(why);
        };
        server::serve(listener, state.clone(), limits, stop)
            .await
            .map_err(RunError::Serve)?;
        if let Ok(Some(failure)) = why_rx.await {
            return Err(failure);
        }
        if recovery.await.unwrap_or(false) {
            let engine = state.engine.clone();
            tokio::task::spawn_blocking(move || engine.close())
                .await
                .map_err(|e| RunError::Serve(std::io::Error::other(e)))?
                .map_err(RunError::Shutdown)?;
        }
        drop(demo_dir);
        Ok(())
    }
}
