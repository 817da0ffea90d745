//! A cluster's snapshots: each node writes its own, tagged with the stream sequence it
//! covers, into its data dir; one node at a time, the holder of a lease in a JetStream
//! key-value bucket, also uploads its snapshot to a JetStream object store every
//! `--snapshot-every`, keeps the newest two there, and, once there are two, trims the
//! stream below the older. A node with an empty data dir (or one older than the newest upload) starts from
//! the newest uploaded snapshot and replays the stream from its sequence.
//!
//! The lease is a key that only one node can create; its holder renews it on every round
//! (a compare-and-set on its revision), and the bucket's age limit drops a lease its
//! holder stopped renewing, so another node takes over within three rounds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::{ClusterConfig, Replicator, until_ok};
use crate::engine::Engine;
use crate::persist::snapshot;

/// Uploaded snapshots kept; the stream is kept from the older one on.
const KEPT: usize = 2;
/// The lease's key.
const LEASE_KEY: &str = "snapshot-uploader";

/// The object store of `config`'s snapshots, created if missing.
pub async fn store(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
) -> Result<object_store::ObjectStore, String> {
    let bucket = format!("{}-snapshots", config.name);
    if let Ok(store) = jetstream.get_object_store(&bucket).await {
        return Ok(store);
    }
    jetstream
        .create_object_store(object_store::Config {
            bucket,
            num_replicas: config.replicas,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())
}

/// The uploaded snapshots, newest first: (sequence, object name).
async fn uploaded(store: &object_store::ObjectStore) -> Result<Vec<(u64, String)>, String> {
    let mut list = store.list().await.map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    while let Some(info) = list.next().await {
        let info = info.map_err(|e| e.to_string())?;
        if info.deleted {
            continue;
        }
        if let Some(seq) = sequence_of(&info.name) {
            found.push((seq, info.name));
        }
    }
    found.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(found)
}

/// The sequence in a snapshot's file name (`snap-00000000000000000042.psnap`).
fn sequence_of(name: &str) -> Option<u64> {
    name.strip_prefix("snap-")?
        .strip_suffix(".psnap")?
        .parse()
        .ok()
}

/// Before the node loads its data dir: downloads the newest uploaded snapshot into it if
/// that is newer than the newest the dir holds. Gives the sequence downloaded, if any.
pub async fn fetch_newer(
    store: &object_store::ObjectStore,
    dir: &Path,
) -> Result<Option<u64>, String> {
    let snapshots = dir.join("snapshots");
    let local = snapshot::list(&snapshots)
        .map_err(|e| e.to_string())?
        .first()
        .map_or(0, |(seq, _)| *seq);
    let Some((seq, name)) = uploaded(store).await?.into_iter().next() else {
        return Ok(None);
    };
    if seq <= local {
        return Ok(None);
    }
    tokio::fs::create_dir_all(&snapshots)
        .await
        .map_err(|e| e.to_string())?;
    // Downloaded beside, then renamed: a half-downloaded file is never taken for a snapshot
    // (and a damaged one fails its checksum at load, falling back to the one before).
    let tmp = snapshots.join(format!("{name}.tmp"));
    let mut object = store.get(&name).await.map_err(|e| e.to_string())?;
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| e.to_string())?;
    tokio::io::copy(&mut object, &mut file)
        .await
        .map_err(|e| e.to_string())?;
    file.flush().await.map_err(|e| e.to_string())?;
    file.sync_all().await.map_err(|e| e.to_string())?;
    tokio::fs::rename(&tmp, snapshots.join(&name))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        seq,
        name,
        "cluster: started from the newest uploaded snapshot"
    );
    Ok(Some(seq))
}

/// Every `every`: writes this node's snapshot and, while this node holds the lease, uploads
/// it, keeps the newest [`KEPT`] uploads and trims the stream below the older one.
pub async fn upload_periodically(
    engine: Arc<Engine>,
    replicator: Arc<Replicator>,
    jetstream: jetstream::Context,
    stream: stream::Stream,
    config: ClusterConfig,
    every: Duration,
    stopping: CancellationToken,
) {
    let second = Duration::from_secs(1);
    let Some(store) = until_ok("no snapshot store yet", second, &stopping, || {
        store(&jetstream, &config)
    })
    .await
    else {
        return;
    };
    let Some(lease) = until_ok("no lease bucket yet", second, &stopping, || {
        lease_bucket(&jetstream, &config, every)
    })
    .await
    else {
        return;
    };
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = round(&engine, &replicator, &store, &lease, &stream).await {
            tracing::warn!(error = %e, "cluster: snapshot round failed");
        }
    }
}

/// The lease's key-value bucket, created if missing. Its stream is made here, as a
/// key-value bucket's is (one value a key, roll-ups allowed, deletes denied, direct gets):
/// async-nats 0.51's own `create_key_value` first asks for the account's info, which it
/// cannot parse from a 2.9 server.
async fn lease_bucket(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
    every: Duration,
) -> Result<kv::Store, String> {
    let bucket = format!("{}-lease", config.name);
    if let Ok(store) = jetstream.get_key_value(&bucket).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            // A lease not renewed for three rounds is gone.
            max_age: (every * 3).max(Duration::from_secs(3)),
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
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

/// One round: the local snapshot, then, as the lease holder, the upload and the trim.
async fn round(
    engine: &Arc<Engine>,
    replicator: &Replicator,
    store: &object_store::ObjectStore,
    lease: &kv::Store,
    stream: &stream::Stream,
) -> Result<(), String> {
    let writer = engine.clone();
    let info = tokio::task::spawn_blocking(move || writer.snapshot())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // A node behind the stream (or stopped) neither takes nor keeps the lease: its
    // snapshot is not the one to give, and holding the lease would stop all uploads.
    if replicator.lag().is_err() || !hold_lease(lease, replicator.node_id()).await? {
        return Ok(());
    }
    let uploads = uploaded(store).await?;
    if uploads.first().is_some_and(|(seq, _)| *seq >= info.seq) {
        return Ok(()); // nothing newer to give
    }
    upload(store, &info.path).await?;
    let uploads = uploaded(store).await?;
    for (_, name) in uploads.iter().skip(KEPT) {
        store.delete(name).await.map_err(|e| e.to_string())?;
    }
    // Only once there are two: the stream keeps everything after the older, so a node a
    // round behind the newest (or restarting from the older) still finds its next change.
    if let Some((oldest, _)) = uploads.get(KEPT - 1) {
        // Everything up to the older kept snapshot is in both: the stream keeps the rest.
        stream
            .purge()
            .sequence(oldest.saturating_add(1))
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            seq = info.seq,
            kept_from = oldest.saturating_add(1),
            "cluster: snapshot uploaded, stream trimmed"
        );
    }
    Ok(())
}

async fn upload(store: &object_store::ObjectStore, path: &PathBuf) -> Result<(), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("a snapshot file has a name")?
        .to_string();
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    store
        .put(name.as_str(), &mut file)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Takes the lease if nobody holds it, or renews it if this node does; whether this node
/// holds it now.
async fn hold_lease(lease: &kv::Store, node: &str) -> Result<bool, String> {
    if lease
        .create(LEASE_KEY, node.to_string().into())
        .await
        .is_ok()
    {
        tracing::info!(node, "cluster: this node now uploads the snapshots");
        return Ok(true);
    }
    let Some(entry) = lease.entry(LEASE_KEY).await.map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    if entry.value.as_ref() != node.as_bytes() {
        return Ok(false);
    }
    Ok(lease
        .update(LEASE_KEY, node.to_string().into(), entry.revision)
        .await
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_give_their_sequence() {
        assert_eq!(sequence_of("snap-00000000000000000042.psnap"), Some(42));
        assert_eq!(sequence_of("snap-42.psnap.tmp"), None);
        assert_eq!(sequence_of("other"), None);
    }
}
