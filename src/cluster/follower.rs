//! The reading side of a cluster node: joins the stream (creating it if missing), applies
//! every change from it in stream order through the engine, and watches how far behind
//! the stream's end the node is.
//!
//! One ordered consumer per node, created from the sequence after the last one applied: it
//! needs no acknowledgements and, if NATS goes away or a message is missed, is created
//! again from where this node stopped, so a change is never applied twice or skipped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{ClusterConfig, Replicator, snapshots, until_ok};
use crate::engine::{Engine, EngineError};

/// Records up to this size are applied on the async worker that read them.
const INLINE_APPLY_BYTES: usize = 64 * 1024;

/// How long a consumer may deliver nothing while the stream has more before it is created
/// again.
const STALLED: Duration = Duration::from_secs(3);

/// How long to wait before trying NATS again after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// Connects this node's engine to its cluster: starts it from the newest snapshot (its
/// own in `data_dir`, or a newer uploaded one), then applies the stream from there until
/// `stopping`; from now on every write goes through the stream. Returns once the node's
/// state is loaded and the stream is being applied.
pub async fn follow(
    engine: Arc<Engine>,
    config: ClusterConfig,
    data_dir: PathBuf,
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
    let jetstream = jetstream::new(client.clone());
    // The server's default until it says (the client connects in the background).
    let replicator = Arc::new(Replicator::new(jetstream.clone(), &config, 1 << 20, 0));
    engine.replicate_through(replicator.clone());
    let mut stream = tokio::select! {
        () = stopping.cancelled() => None,
        stream = open_stream(&jetstream, &config, &stopping) => stream,
    }
    .ok_or(JoinError::Stopped)?;
    // Connected now: the server has said how large a message may be.
    replicator.set_max_payload(client.server_info().max_payload);
    match snapshots::store(&jetstream, &config).await {
        Ok(store) => {
            if let Err(e) = snapshots::fetch_newer(&store, &data_dir).await {
                tracing::warn!(error = %e, "cluster: the uploaded snapshots could not be read");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cluster: no snapshot store"),
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
            () = apply_stream(&engine, &stream, &applier, &reconnected) => {}
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
/// server stopped first).
async fn open_stream(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
    stopping: &CancellationToken,
) -> Option<stream::Stream> {
    let wanted = stream::Config {
        name: config.stream_name(),
        subjects: vec![config.log_subject()],
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        // Every change is kept until snapshots let the stream be trimmed.
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    until_ok("the stream could not be opened", RETRY, stopping, || {
        jetstream.get_or_create_stream(wanted.clone())
    })
    .await
}

/// Applies the stream from the sequence after the last applied, for ever: a consumer that
/// fails is created again from where this node stopped.
async fn apply_stream(
    engine: &Arc<Engine>,
    stream: &stream::Stream,
    replicator: &Replicator,
    reconnected: &tokio::sync::Notify,
) {
    let mut catching_up = true;
    if !replicator.is_behind() {
        catching_up = false;
        engine.judge_fences_from_next_tick();
    }
    loop {
        let start = replicator.applied_seq().saturating_add(1);
        let created = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                // Pulls expire, and heartbeats come, within 2 s: a stalled consumer is
                // noticed in seconds.
                max_expires: Duration::from_secs(2),
                ..Default::default()
            })
            .await;
        let messages = match created {
            Ok(consumer) => consumer.messages().await,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: no consumer on the stream; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: the stream could not be read; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut stalled_since: Option<tokio::time::Instant> = None;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = reconnected.notified() => {
                    tracing::info!("cluster: NATS is back; reading the stream on");
                    break;
                }
                _ = check.tick() => {
                    // The stream has more than this node applied, and nothing came for a
                    // while: the consumer is gone (its server died) without the client
                    // noticing. Measured: with the stream's leader killed, the consumer
                    // it hosted delivered nothing for minutes.
                    if replicator.is_behind() {
                        let since = *stalled_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= STALLED {
                            tracing::warn!("cluster: the stream has more, but nothing came for {STALLED:?}; reading it anew");
                            break;
                        }
                    } else {
                        stalled_since = None;
                    }
                    continue;
                }
            };
            stalled_since = None;
            let Some(message) = next else { break };
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: reading the stream failed; resuming");
                    break;
                }
            };
            let Ok(info) = message.info() else {
                tracing::warn!("cluster: a stream message without its metadata; resuming");
                break;
            };
            let seq = info.stream_sequence;
            let stored_ms =
                i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            let applied = replicator.applied_seq();
            if seq <= applied {
                continue; // already applied: a consumer created again may repeat some
            }
            if seq > applied.saturating_add(1) {
                // The stream was trimmed past this node (it fell behind the snapshots by
                // more than the stream keeps): going on would skip changes.
                replicator.broken(format!(
                    "the stream skipped from {applied} to {seq}: it was trimmed past this node's state; restart it with an empty data dir to start from the newest snapshot"
                ));
                tracing::error!(
                    applied,
                    seq,
                    "cluster: this node fell behind the trimmed stream; it stops applying"
                );
                return;
            }
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_string());
            // A small record (a POI, a batch of positions) applies in microseconds, inline;
            // a large one (an import) may take seconds, so it goes off the async workers.
            let outcome = if message.payload.len() <= INLINE_APPLY_BYTES {
                engine.apply_replicated(seq, stored_ms, &message.payload)
            } else {
                let engine = engine.clone();
                let payload = message.payload.clone();
                tokio::task::spawn_blocking(move || {
                    engine.apply_replicated(seq, stored_ms, &payload)
                })
                .await
                .unwrap_or_else(|e| Err(EngineError::Replicated(format!("apply panicked: {e}"))))
            };
            if let Err(e) = &outcome {
                // Every node fails the same record the same way: the state stays equal.
                tracing::warn!(seq, error = %e, "cluster: a stream record was not applied");
            }
            replicator.applied(id.as_deref(), seq, outcome);
            if catching_up && !replicator.is_behind() {
                catching_up = false;
                engine.judge_fences_from_next_tick();
            }
        }
        tokio::time::sleep(RETRY).await;
    }
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
            Ok(Ok(info)) => replicator.saw_stream_at(info.state.last_sequence),
            Ok(Err(e)) => tracing::debug!(error = %e, "cluster: no stream info"),
            Err(_) => tracing::debug!("cluster: stream info timed out"),
        }
    }
}
