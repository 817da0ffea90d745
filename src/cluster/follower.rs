//! The reading side of a cluster node: joins the stream (creating it if missing), applies
//! every change from it in stream order through the engine, and watches how far behind
//! the stream's end the node is.
//!
//! One ordered consumer per node, created from the sequence after the last one applied: it
//! needs no acknowledgements and, if NATS goes away or a message is missed, is created
//! again from where this node stopped, so a change is never applied twice or skipped.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{ClusterConfig, Replicator};
use crate::engine::{Engine, EngineError};

/// Records up to this size are applied on the async worker that read them.
const INLINE_APPLY_BYTES: usize = 64 * 1024;

/// How long to wait before trying NATS again after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// Connects this node's engine to its cluster: from now on every write goes through the
/// stream, and this task applies the stream until `stopping`.
pub async fn follow(
    engine: Arc<Engine>,
    config: ClusterConfig,
    stopping: CancellationToken,
) -> Result<Arc<Replicator>, async_nats::ConnectError> {
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
        // seconds, and writes wait on it (16 s from a restart to the first write, measured).
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .connect(config.urls.clone())
        .await?;
    let max_payload = client.server_info().max_payload.max(1);
    let max_payload = if max_payload <= 1 {
        1 << 20
    } else {
        max_payload
    };
    let jetstream = jetstream::new(client);
    let replicator = Arc::new(Replicator::new(jetstream.clone(), &config, max_payload, 0));
    engine.replicate_through(replicator.clone());
    let applier = replicator.clone();
    tokio::spawn(async move {
        let stream = tokio::select! {
            () = stopping.cancelled() => return,
            stream = open_stream(&jetstream, &config) => stream,
        };
        let watcher = tokio::spawn(watch_lag(stream.clone(), applier.clone(), stopping.clone()));
        tokio::select! {
            () = stopping.cancelled() => {}
            () = apply_stream(&engine, &stream, &applier, &reconnected) => {}
        }
        watcher.abort();
    });
    Ok(replicator)
}

/// The cluster's stream, created if missing; retried until NATS answers.
async fn open_stream(jetstream: &jetstream::Context, config: &ClusterConfig) -> stream::Stream {
    loop {
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
        match jetstream.get_or_create_stream(wanted).await {
            Ok(stream) => return stream,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: the stream could not be opened; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Applies the stream from the sequence after the last applied, for ever: a consumer that
/// fails is created again from where this node stopped.
async fn apply_stream(
    engine: &Arc<Engine>,
    stream: &stream::Stream,
    replicator: &Replicator,
    reconnected: &tokio::sync::Notify,
) {
    loop {
        let start = replicator.applied_seq() + 1;
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
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = reconnected.notified() => {
                    tracing::info!("cluster: NATS is back; reading the stream on");
                    break;
                }
            };
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
            if seq <= replicator.applied_seq() {
                continue; // already applied: a consumer created again may repeat some
            }
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_string());
            // A small record (a POI, a batch of positions) applies in microseconds, inline;
            // a large one (an import) may take seconds, so it goes off the async workers.
            let outcome = if message.payload.len() <= INLINE_APPLY_BYTES {
                engine.apply_replicated(&message.payload)
            } else {
                let engine = engine.clone();
                let payload = message.payload.clone();
                tokio::task::spawn_blocking(move || engine.apply_replicated(&payload))
                    .await
                    .unwrap_or_else(|e| {
                        Err(EngineError::Replicated(format!("apply panicked: {e}")))
                    })
            };
            if let Err(e) = &outcome {
                // Every node fails the same record the same way: the state stays equal.
                tracing::warn!(seq, error = %e, "cluster: a stream record was not applied");
            }
            replicator.applied(id.as_deref(), seq, outcome);
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
