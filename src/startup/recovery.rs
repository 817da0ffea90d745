//! Getting the state back, in the background while `/readyz` answers 503: a single node
//! recovers its data directory (loading the bundled sample on a fresh one); a cluster node
//! joins its cluster and catches up with the stream. Either marks the server ready, or
//! hands the failure to the serving task, which stops.

use std::sync::atomic::Ordering;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::RunError;
use crate::cluster::{self, ClusterConfig};
use crate::config::ServeConfig;
use crate::engine::{self, Engine};
use crate::persist::wal::WalOptions;
use crate::server::{self, AppState};

/// The cluster this node joins, if `--cluster` names one.
pub(super) fn cluster_config(config: &ServeConfig) -> Option<ClusterConfig> {
    (!config.cluster.is_empty()).then(|| ClusterConfig {
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
    })
}

/// Joins the cluster: the node's state is the stream's, with no local log to recover and
/// no sample to load; `/readyz` follows how far behind the stream the node is. The task
/// gives whether the node joined.
pub(super) fn join_cluster(
    state: &AppState,
    cluster: ClusterConfig,
    config: &ServeConfig,
    failed: oneshot::Sender<RunError>,
) -> JoinHandle<bool> {
    let state = state.clone();
    let data_dir = config.data_dir.clone();
    tokio::spawn(async move {
        let joined = cluster::follow(
            state.engine.clone(),
            cluster,
            data_dir,
            state.replicator.clone(),
            state.stopping.clone(),
        )
        .await;
        match joined {
            Ok(_) => {
                state.ready.store(true, Ordering::Release);
                true
            }
            Err(e) => {
                let failure = RunError::Cluster(e);
                tracing::error!(error = %failure, "joining the cluster failed; stopping");
                let _ = failed.send(failure);
                false
            }
        }
    })
}

/// Recovers the data directory on a blocking thread (a panic there is a failure, not a
/// server answering 503 for ever). The task gives whether it recovered.
pub(super) fn recover_data_dir(
    state: &AppState,
    config: &ServeConfig,
    failed: oneshot::Sender<RunError>,
) -> JoinHandle<bool> {
    let state = state.clone();
    let data_dir = config.data_dir.clone();
    let options = WalOptions {
        fsync: config.fsync,
        ..WalOptions::default()
    };
    let damaged = if config.start_empty_if_damaged {
        engine::DamagedState::MoveAsideAndStartEmpty
    } else {
        engine::DamagedState::Refuse
    };
    let load_sample_if_fresh = !config.no_sample;
    tokio::task::spawn_blocking(move || {
        let recovered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.engine.recover_with(&data_dir, options, damaged)
        }));
        let failure = match recovered {
            Ok(Ok(report)) => {
                if report.fresh && load_sample_if_fresh {
                    load_sample(&state.engine);
                }
                state.ready.store(true, Ordering::Release);
                return true;
            }
            Ok(Err(e)) => RunError::Recovery(e),
            Err(panic) => RunError::RecoveryPanicked(panic_message(panic.as_ref())),
        };
        tracing::error!(error = %failure, "recovery failed; stopping");
        let _ = failed.send(failure);
        false
    })
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
    let loaded = crate::sample::load(engine);
    match loaded {
        Ok(pois) => tracing::info!(
            pois,
            millis = started.elapsed().as_millis() as u64,
            "loaded the bundled sample data"
        ),
        Err(e) => tracing::error!(error = %e, "could not load the bundled sample data"),
    }
}
