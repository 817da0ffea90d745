//! The reading side of a cluster node: joins the stream (creating it if missing, matching
//! `--cluster-replicas`), starts the tasks that apply it ([`super::applier`]), record this
//! node's progress, tick, export events and upload snapshots, and watches how far behind
//! the stream's end the node is and whether the stream answers it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio_util::sync::CancellationToken;

use super::{ClusterConfig, Replicator, snapshots, until_ok};
use crate::engine::Engine;

/// How long to wait before trying NATS again after a failure.
pub(super) const RETRY: Duration = Duration::from_millis(200);

/// How long one JetStream request may go unanswered before it is tried again.
pub(super) const JETSTREAM_REQUEST: Duration = Duration::from_millis(1_000);

/// Connects this node's engine to its cluster: starts it from the newest snapshot (its
/// own in `data_dir`, or a newer uploaded one), then applies the stream from there until
/// `stopping`; from now on every write goes through the stream, whose replicator is put in
/// `joined`. Returns once the node's state is loaded and the stream is being applied.
pub async fn follow(
    engine: Arc<Engine>,
    config: ClusterConfig,
    data_dir: PathBuf,
    joined: Arc<OnceLock<Arc<Replicator>>>,
    stopping: CancellationToken,
) -> Result<Arc<Replicator>, JoinError> {
    // Told when the connection comes back, so that the follower reads on at once rather
    // than after its consumer's missed heartbeats (15 s from a NATS restart, measured).
    let reconnected = Arc::new(tokio::sync::Notify::new());
    let notify = reconnected.clone();
    let client = async_nats::ConnectOptions::new()
        .name("proxima")
        .event_callback(move |event| {
            let notify = notify.clone();
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    notify.notify_one();
                }
            }
        })
        .retry_on_initial_connect()
        // Back within a second of NATS returning: the client's default backoff grows to
        // seconds, and writes wait on it.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .connect(config.urls.clone())
        .await
        .map_err(JoinError::Connect)?;
    let mut jetstream = jetstream::new(client.clone());
    // Every JetStream request (a publish's acknowledgement, a consumer's creation) gives up
    // after this and is tried again: just after NATS servers restart, a request may go
    // unanswered while they elect leaders, and the client's default (5 s) held a node's
    // reading of the stream back for tens of seconds (measured: writes resumed 8.8 to
    // 13.8 s after three restarted servers listened).
    jetstream.set_timeout(JETSTREAM_REQUEST);
    // The server's default until it says (the client connects in the background).
    let replicator = Arc::new(Replicator::new(jetstream.clone(), &config, 1 << 20, 0));
    let _ = joined.set(replicator.clone());
    engine.replicate_through(Box::new(super::replicator::StreamLog(replicator.clone())));
    let mut stream = tokio::select! {
        () = stopping.cancelled() => None,
        stream = open_stream(&jetstream, &config, &stopping) => stream?,
    }
    .ok_or(JoinError::Stopped)?;
    // The buckets and the events stream keep as many copies as the stream.
    let mut config = config;
    config.replicas = Some(stream.cached_info().config.num_replicas);
    match super::buckets::bucket(&jetstream, &config, "answers", Some(config.answers_for)).await {
        Ok(answers) => replicator.keep_answers_in(answers),
        Err(e) => tracing::warn!(error = %e, "cluster: no bucket for idempotent writes' answers"),
    }
    // Connected now: the server has said how large a message may be.
    replicator.set_max_payload(client.server_info().max_payload);
    if let Err(e) = snapshots::fetch_newer(&jetstream, &config, &data_dir).await {
        tracing::warn!(error = %e, "cluster: the uploaded snapshots could not be read");
    }
    let opener = engine.clone();
    let seq = tokio::task::spawn_blocking(move || opener.open_cluster_dir(&data_dir))
        .await
        .map_err(|e| JoinError::Start(format!("loading the state panicked: {e}")))?
        .map_err(|e| JoinError::Start(e.to_string()))?;
    replicator.start_from(seq);
    let info = stream
        .info()
        .await
        .map_err(|e| JoinError::Start(e.to_string()))?
        .clone();
    let state = info.state.clone();
    // Event ids carry the stream's epoch: the same on every node, and new if the stream is
    // ever created anew (ids from the old one then tell their clients to list again).
    engine.events().join_cluster(super::epoch_of(
        &info.config.name,
        info.created.unix_timestamp_nanos(),
    ));
    if state.first_sequence > seq.saturating_add(1) {
        return Err(JoinError::Start(format!(
            "the stream now starts at sequence {}, past this node's state at {seq}, and no newer snapshot was uploaded",
            state.first_sequence
        )));
    }
    if state.last_sequence < seq {
        // A stream created anew (deleted, or lost with one replica): this node's state
        // belongs to another history, and going on would diverge quietly.
        return Err(JoinError::Start(format!(
            "the stream ends at sequence {}, before this node's state at {seq}: it is not the stream this state came from; start this node with an empty data dir",
            state.last_sequence
        )));
    }
    replicator.stream_answered();
    replicator.saw_stream_at(state.last_sequence);
    // Catching up replays changes whose events were given before: fences are judged once
    // the node has caught up, from the next clock tick (see
    // `Engine::judge_fences_from_next_tick`).
    engine.quiet_fences(true);
    let applier = replicator.clone();
    let uploader = (engine.clone(), replicator.clone(), stream.clone());
    let watcher = tokio::spawn(watch_lag(stream.clone(), applier.clone(), stopping.clone()));
    let applying = stopping.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = applying.cancelled() => {}
            () = super::applier::apply_stream(&engine, &stream, &applier, &reconnected) => {}
        }
        watcher.abort();
    });
    tokio::spawn(super::clock_tick::tick_every_second(
        uploader.0.clone(),
        jetstream.clone(),
        config.log_subject(),
        stopping.clone(),
    ));
    if let Some((encode, retention)) = config.export_events.clone() {
        tokio::spawn(super::event_export::export(
            uploader.0.events().clone(),
            jetstream.clone(),
            replicator.clone(),
            config.clone(),
            encode,
            retention,
            stopping.clone(),
        ));
    }
    // Every node records how far it has applied the stream: the stream is never trimmed
    // past a live node.
    tokio::spawn(snapshots::record_progress(
        replicator.clone(),
        jetstream.clone(),
        config.clone(),
        config
            .snapshot_every
            .unwrap_or(std::time::Duration::from_secs(600)),
        stopping.clone(),
    ));
    if let Some(every) = config.snapshot_every {
        let (engine, replicator, stream) = uploader;
        tokio::spawn(snapshots::upload_periodically(
            engine, replicator, jetstream, stream, config, every, stopping,
        ));
    }
    Ok(replicator)
}

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The NATS servers' addresses are unusable.
    #[error("cluster: {0}")]
    Connect(async_nats::ConnectError),
    /// The node's state could not be loaded or continued from the stream.
    #[error("cluster: {0}")]
    Start(String),
    /// The server stopped before the node had joined.
    #[error("cluster: stopped before joining")]
    Stopped,
}

/// The cluster's stream, created if missing; retried until NATS answers (`None`: the
/// server stopped first). With `--cluster-replicas` given and different from the stream's,
/// the stream is changed to it, or the node refuses to join.
async fn open_stream(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
    stopping: &CancellationToken,
) -> Result<Option<stream::Stream>, JoinError> {
    let wanted = stream::Config {
        name: config.stream_name(),
        subjects: vec![config.log_subject()],
        num_replicas: config.replicas.unwrap_or(1),
        storage: stream::StorageType::File,
        // Every change is kept until snapshots let the stream be trimmed.
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let Some(mut stream) = until_ok("the stream could not be opened", RETRY, stopping, || {
        jetstream.get_or_create_stream(wanted.clone())
    })
    .await
    else {
        return Ok(None);
    };
    let has = stream.cached_info().config.num_replicas;
    if let Some(want) = config.replicas
        && want != has
    {
        let mut changed = stream.cached_info().config.clone();
        changed.num_replicas = want;
        // A standalone NATS server takes the change and keeps one copy: what the stream
        // keeps afterwards is what counts.
        let updated = match jetstream.update_stream(changed).await {
            Ok(_) => jetstream
                .get_stream(&wanted.name)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        // A standalone server (no JetStream cluster) keeps one copy whatever it says.
        let kept = |now: &stream::Stream| {
            let info = now.cached_info();
            info.config.num_replicas == want && (want == 1 || info.cluster.is_some())
        };
        match updated {
            Ok(now) if kept(&now) => {
                tracing::warn!(
                    stream = %wanted.name,
                    from = has,
                    to = want,
                    "cluster: changed the stream's replicas, as --cluster-replicas says"
                );
                stream = now;
            }
            refused => {
                let why = refused.map_or_else(
                    |e| e,
                    |_| "the NATS server is not a JetStream cluster: it keeps one copy".into(),
                );
                return Err(JoinError::Start(format!(
                    "the stream {} keeps {has} replicas, this node was started with --cluster-replicas {want}, and JetStream would not change it ({why}); start the node with --cluster-replicas {has}, or without the flag",
                    wanted.name
                )));
            }
        }
    }
    if let Some(want) = config.replicas
        && want > 1
        && stream.cached_info().cluster.is_none()
    {
        return Err(JoinError::Start(format!(
            "--cluster-replicas {want}: the NATS server is not a JetStream cluster and keeps one copy of the stream {}; start the node without the flag, or on a NATS cluster",
            wanted.name
        )));
    }
    Ok(Some(stream))
}

/// Asks the stream where its end is, twice a second, so that `/readyz` can tell when this
/// node falls behind (or is cut off from NATS, when the answer stops coming).
async fn watch_lag(
    mut stream: stream::Stream,
    replicator: Arc<Replicator>,
    stopping: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        match tokio::time::timeout(Duration::from_secs(2), stream.info()).await {
            Ok(Ok(info)) => {
                replicator.stream_answered();
                replicator.saw_stream_at(info.state.last_sequence);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cluster: no stream info"),
            Err(_) => tracing::debug!("cluster: stream info timed out"),
        }
    }
}
