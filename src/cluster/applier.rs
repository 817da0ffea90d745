//! Applying the stream: one ordered consumer per node, created from the sequence after the
//! last one applied. It needs no acknowledgements and, if NATS goes away or a message is
//! missed, is created again from where this node stopped, so a change is never applied
//! twice or skipped.
//!
//! While no consumer can be created (NATS servers just restarted answer a stream's own
//! requests, and take publishes, seconds before they can place a consumer), the node reads
//! on message by message, by sequence, from the stream's leader: writes made meanwhile are
//! applied, and answered, as soon as the stream takes them.
//!
//! While this node's route store is behind its writes (past its bound of fresh pieces), the
//! node applies nothing more until it has caught up ([`wait_for_route_store`]). The node
//! that took a write refused it if its own store was behind, but a slower node applying the
//! stream cannot refuse a record every other node applies: without the wait, its fresh
//! pieces would pile up on disk with no bound. The stream keeps the records meanwhile, and
//! the node's readiness says it lags once that is longer than `--max-lag`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use futures_util::StreamExt;

use super::Replicator;
use super::follower::RETRY;
use crate::engine::{Engine, EngineError};

/// Records up to this size are applied on the async worker that read them.
const INLINE_APPLY_BYTES: usize = 64 * 1024;

/// How long a consumer may deliver nothing while the stream has more before it is created
/// again.
const STALLED: Duration = Duration::from_secs(3);

/// How long one read of a message by its sequence may take.
const READ_BY_SEQUENCE: Duration = Duration::from_secs(1);

/// How often a node whose route store is behind looks again before applying on.
const ROUTES_BEHIND_POLL: Duration = Duration::from_millis(100);

/// A message of the stream, as applying it needs it.
struct Record {
    seq: u64,
    stored_ms: i64,
    id: Option<String>,
    payload: bytes::Bytes,
}

/// What came of applying a record.
enum Applied {
    /// Applied (or already applied before): read on.
    Next,
    /// The stream skipped past this node's place: read it anew from there.
    Skipped,
    /// The stream was trimmed past this node: it stops.
    Broken,
}

/// Applies the stream from the sequence after the last applied, for ever: a consumer that
/// fails is created again from where this node stopped.
pub(super) async fn apply_stream(
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
        let created = stream.create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            // Pulls expire, and heartbeats come, within 2 s: a stalled consumer is
            // noticed in seconds.
            max_expires: Duration::from_secs(2),
            ..Default::default()
        });
        // A creation sent while NATS was away is not waited for once it is back.
        let created = tokio::select! {
            created = created => created,
            () = reconnected.notified() => continue,
        };
        let messages = match created {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: no consumer on the stream; reading it by sequence meanwhile");
                match read_by_sequence(engine, stream, replicator, &mut catching_up).await {
                    Applied::Broken => return,
                    Applied::Next | Applied::Skipped => {}
                }
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
            let record = Record {
                seq: info.stream_sequence,
                stored_ms: i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000)
                    .unwrap_or(0),
                id: message_id(message.headers.as_ref()),
                payload: message.payload.clone(),
            };
            match apply(engine, stream, replicator, record, &mut catching_up).await {
                Applied::Next => {}
                Applied::Skipped => break,
                Applied::Broken => return,
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Reads and applies the stream message by message, by sequence, up to its last known
/// sequence (while no consumer can be had).
async fn read_by_sequence(
    engine: &Arc<Engine>,
    stream: &stream::Stream,
    replicator: &Replicator,
    catching_up: &mut bool,
) -> Applied {
    while replicator.is_behind() {
        let seq = replicator.applied_seq().saturating_add(1);
        let read = tokio::time::timeout(READ_BY_SEQUENCE, stream.get_raw_message(seq)).await;
        let Ok(Ok(message)) = read else {
            return Applied::Next;
        };
        let record = Record {
            seq: message.sequence,
            stored_ms: i64::try_from(message.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            id: message_id(Some(&message.headers)),
            payload: message.payload,
        };
        match apply(engine, stream, replicator, record, catching_up).await {
            Applied::Next => {}
            other => return other,
        }
    }
    Applied::Next
}

/// Returns once this node's route store is not behind its writes, having kept its route
/// thread at work meanwhile; logs a wait when it begins and when it ends. Every record
/// waits, not only those holding trip points: the stream is applied in order, so the
/// records after one that waits wait too.
async fn wait_for_route_store(engine: &Engine) {
    let backlog = engine.route_backlog();
    if !backlog.behind {
        return;
    }
    let started = tokio::time::Instant::now();
    tracing::warn!(
        fresh_pieces = backlog.fresh_pieces,
        "cluster: the route store is behind its writes; applying the stream waits until it catches up"
    );
    while engine.route_backlog().behind {
        engine.work_on_route_backlog();
        tokio::time::sleep(ROUTES_BEHIND_POLL).await;
    }
    tracing::info!(
        waited_s = started.elapsed().as_secs_f64(),
        "cluster: the route store caught up; applying the stream again"
    );
}

fn message_id(headers: Option<&async_nats::HeaderMap>) -> Option<String> {
    headers
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|v| v.as_str().to_string())
}

/// Applies one record of the stream in its place.
async fn apply(
    engine: &Arc<Engine>,
    stream: &stream::Stream,
    replicator: &Replicator,
    record: Record,
    catching_up: &mut bool,
) -> Applied {
    let Record {
        seq,
        stored_ms,
        id,
        payload,
    } = record;
    let applied = replicator.applied_seq();
    if seq <= applied {
        return Applied::Next; // already applied: a consumer created again may repeat some
    }
    if seq > applied.saturating_add(1) {
        // A skip: the stream was trimmed past this node, or the consumer lost its place (an
        // ordered consumer recreated by the client after a long pause restarts past what it
        // had buffered). Only the stream's start tells.
        let first = match tokio::time::timeout(Duration::from_secs(5), stream.clone().info()).await
        {
            Ok(Ok(info)) => Some(info.state.first_sequence),
            _ => None,
        };
        if let Some(first) = first.filter(|&first| first > applied.saturating_add(1)) {
            replicator.broken(format!(
                "the stream now starts at {first}, past this node's state at {applied}: it was trimmed past this node; restart it with an empty data dir to start from the newest snapshot"
            ));
            tracing::error!(
                applied,
                seq,
                first,
                "cluster: this node fell behind the trimmed stream; it stops applying"
            );
            return Applied::Broken;
        }
        tracing::warn!(
            applied,
            seq,
            "cluster: the consumer skipped past this node's place; reading the stream anew"
        );
        return Applied::Skipped;
    }
    wait_for_route_store(engine).await;
    // A small record (a POI, a batch of positions) applies in microseconds, inline; a large
    // one (an import) may take seconds, so it goes off the async workers.
    let outcome = if payload.len() <= INLINE_APPLY_BYTES {
        engine.apply_replicated(seq, stored_ms, &payload)
    } else {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.apply_replicated(seq, stored_ms, &payload))
            .await
            .unwrap_or_else(|e| Err(EngineError::Replicated(format!("apply panicked: {e}"))))
    };
    if let Err(e) = &outcome {
        // Every node fails the same record the same way: the state stays equal.
        tracing::warn!(seq, error = %e, "cluster: a stream record was not applied");
    }
    replicator.applied(id.as_deref(), seq, outcome);
    if *catching_up && !replicator.is_behind() {
        *catching_up = false;
        engine.judge_fences_from_next_tick();
    }
    Applied::Next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::engine::{EngineConfig, LiveConfig};
    use crate::persist::wal::WalOptions;
    use crate::pois::CursorKey;
    use crate::routes::{RoutePoint, RouteStore};
    use crate::travellers::TravellerConfig;

    #[test]
    fn applying_waits_while_the_route_store_is_behind_and_gets_it_caught_up() {
        // A data directory whose route store holds one fresh piece past the bound, as a
        // node whose route thread could not keep up leaves it; nothing is pushed after the
        // restart, so nothing but the wait starts the route thread.
        let dir = tempfile::tempdir().expect("a temp dir");
        {
            let store =
                RouteStore::open(&dir.path().join(crate::engine::ROUTES_FILE)).expect("opens");
            for i in 0..=crate::engine::MAX_FRESH_PIECES as i64 {
                let point = RoutePoint {
                    ts: 1_000 + i,
                    lat: 0.0,
                    lon: 0.0,
                };
                store
                    .add_fresh_trips([("t", &[point][..])])
                    .expect("written");
            }
        }
        let engine = Engine::new(EngineConfig {
            cursor_key: CursorKey::random(),
            clock: Arc::new(SystemClock),
            travellers: TravellerConfig {
                trail_capacity: 32,
                ttl_ms: i64::MAX / 4,
            },
            routes: Default::default(),
            live: LiveConfig::default(),
        });
        engine
            .recover(dir.path(), WalOptions::default())
            .expect("recovers");
        assert!(engine.route_backlog().behind);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), wait_for_route_store(&engine)).await
            })
            .expect("the route store caught up within a minute");
        let backlog = engine.route_backlog();
        assert!(!backlog.behind, "{backlog:?}");
        assert!(backlog.fresh_pieces < crate::engine::MAX_FRESH_PIECES);
        assert_eq!(backlog.refused, 0, "a wait is not a refusal");
    }
}
