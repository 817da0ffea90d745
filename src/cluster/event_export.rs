//! `--cluster-events`: every fence event also goes to JetStream, on
//! `<name>.events.<owner>.<fence>`, kept in the stream `<NAME>_EVENTS` for the event retention, so
//! that a back end consumes events durably, at its own pace, with its own consumers,
//! without Proxima holding their queues.
//!
//! Every node with the flag publishes every event with the event's id as its
//! `Nats-Msg-Id`: the id is the same on every node, so JetStream stores each event once
//! (within its two-minute duplicate window) whichever nodes are up. Publishing never holds
//! up the apply path: events wait in a bounded queue, published in batches, each batch
//! retried until NATS takes it (again stored once); an event the queue has no room for
//! is counted (`/v1/stats` `cluster.events_not_exported`), and the other nodes publish it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ClusterConfig, EventEncoder, Replicator, until_ok};
use crate::events::{Event, EventLog};

/// Events waiting to be published, at most.
pub(super) const QUEUE: usize = 65_536;

/// Events published before their acknowledgements are awaited together.
const BATCH: usize = 512;

/// The subject token for a fence id: letters, digits, `-` and `_` as they are, every other
/// byte as `%XX` (a subject token may hold no `.`, `*`, `>` or space).
pub fn fence_token(fence: &str) -> String {
    let mut token = String::with_capacity(fence.len());
    for byte in fence.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            token.push_str(&format!("%{byte:02X}"));
        }
    }
    token
}

/// Creates the events stream if missing, hands the event log a queue, and publishes what
/// comes through it until `stopping`.
pub(super) async fn export(
    log: Arc<EventLog>,
    jetstream: jetstream::Context,
    replicator: Arc<Replicator>,
    config: ClusterConfig,
    encode: EventEncoder,
    retention: Duration,
    stopping: CancellationToken,
) {
    let wanted = stream::Config {
        name: format!("{}_EVENTS", config.stream_name()),
        subjects: vec![format!("{}.events.>", config.name)],
        num_replicas: config.replicas.unwrap_or(1),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: retention,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let opened = until_ok(
        "the events stream could not be opened",
        Duration::from_millis(500),
        &stopping,
        || jetstream.get_or_create_stream(wanted.clone()),
    )
    .await;
    if opened.is_none() {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Arc<Event>>(QUEUE);
    log.set_tap(tx);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        tokio::select! {
            () = stopping.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
        }
        let mut pause = Duration::from_millis(50);
        loop {
            match publish_batch(&jetstream, &config.name, &log, &encode, &batch).await {
                Ok(()) => {
                    replicator.count_exported(batch.len());
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "cluster: events not exported yet; retrying");
                    tokio::select! {
                        () = stopping.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Publishes `events`, then waits for every acknowledgement.
async fn publish_batch(
    jetstream: &jetstream::Context,
    name: &str,
    log: &EventLog,
    encode: &EventEncoder,
    events: &[Arc<Event>],
) -> Result<(), String> {
    let mut acks = Vec::with_capacity(events.len());
    for event in events {
        let id = log.id_of(event.place).to_string();
        let fence = &event.event.fence;
        let (kind, payload) = (encode.0)(event);
        // Ids are numbered per owner: the message id that stores each event once names
        // its owner too.
        let message = jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .header("Proxima-Event", kind)
            .header("Proxima-Event-Id", id.as_str())
            .header("Proxima-Fence-Owner", &*fence.owner)
            .message_id(format!("{}/{id}", fence.owner));
        let subject = format!(
            "{name}.events.{}.{}",
            fence_token(&fence.owner),
            fence_token(&fence.id)
        );
        acks.push(
            jetstream
                .send_publish(subject, message)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    for ack in acks {
        tokio::time::timeout(Duration::from_secs(5), ack)
            .await
            .map_err(|_| "no acknowledgement within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fence_token;

    #[test]
    fn fence_ids_become_single_subject_tokens_one_to_one() {
        assert_eq!(fence_token("home-42_a"), "home-42_a");
        assert_eq!(fence_token("a.b *>c"), "a%2Eb%20%2A%3Ec");
        assert_eq!(fence_token("café%"), "caf%C3%A9%25");
        assert_ne!(fence_token("a.b"), fence_token("a%2Eb"));
    }
}
