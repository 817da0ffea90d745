//! The cluster's clock tick: once a second, while there are fences, a node publishes an
//! [`ExpireFences`] change for that second, so that travellers whose position passed the
//! time-to-live leave their fences at the same place in the stream on every node (each
//! node's own clock would have them leave at different moments, and the events would be
//! numbered differently). Every node publishes the tick with the message id of its second:
//! JetStream stores one per second whichever nodes are up.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, ExpireFences, Mutation};

/// How long a tick's publish may wait for its acknowledgement: a tick not taken is
/// followed by the next one a second later.
const TICK_ACK: Duration = Duration::from_secs(2);

/// Publishes a tick every second on `subject` while `engine` has fences, until `stopping`.
pub(super) async fn tick_every_second(
    engine: Arc<Engine>,
    jetstream: jetstream::Context,
    subject: String,
    stopping: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = every.tick() => {}
        }
        if engine.fence_count() == 0 {
            continue;
        }
        let second = engine.now_ms().div_euclid(1000);
        let tick = Mutation::ExpireFences(ExpireFences {
            at_ms: second * 1000,
        });
        let record = match crate::persist::encode(&tick) {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "cluster: a clock tick could not be encoded");
                continue;
            }
        };
        let publish = jetstream::message::PublishMessage::build()
            .payload(record.into())
            .message_id(format!("tick-{second}"));
        let sent = async {
            jetstream
                .send_publish(subject.clone(), publish)
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(TICK_ACK, sent).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "cluster: a clock tick was not taken"),
            Err(_) => tracing::debug!("cluster: a clock tick was not acknowledged in time"),
        }
    }
}
