//! The cluster's key-value buckets (the snapshot lease, the uploads list, each node's
//! progress, idempotent writes' answers), made the way JetStream makes them.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use super::ClusterConfig;

/// A key-value bucket of `config`'s, created if missing, its values kept for `max_age`
/// (`None`: for ever). Its stream is made here, as a key-value bucket's is (one value a
/// key, roll-ups allowed, deletes denied, direct gets): async-nats 0.51's own
/// `create_key_value` first asks for the account's info, which it cannot parse from a 2.9
/// server.
pub(super) async fn bucket(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
    suffix: &str,
    max_age: Option<Duration>,
) -> Result<kv::Store, String> {
    let bucket = format!("{}-{suffix}", config.name);
    if let Ok(store) = jetstream.get_key_value(&bucket).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: max_age.unwrap_or_default(),
            storage: stream::StorageType::File,
            num_replicas: config.replicas.unwrap_or(1),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    jetstream
        .get_key_value(&bucket)
        .await
        .map_err(|e| e.to_string())
}
