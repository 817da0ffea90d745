//! A cluster's snapshots: each node writes its own, tagged with the stream sequence it
//! covers, into its data dir; one node at a time, the holder of a lease in a JetStream
//! key-value bucket, also uploads its snapshot to a JetStream object store every
//! `--snapshot-every`, keeps the newest two there, and trims the stream below what every
//! node still needs. A node with an empty data dir (or one older than the newest upload)
//! starts from the newest uploaded snapshot and replays the stream from its sequence.
//!
//! What is kept where, so that every node reads the same answer whichever NATS replica
//! answers it (an object store's listing varied with the replica, and kept three or four
//! uploads where two were meant):
//! - the list of uploads kept is one key (`uploads`) of a key-value bucket, changed only by
//!   the lease holder, with compare-and-set; objects not in it are deleted;
//! - each node's applied sequence is a key (`node-<id>`) of another bucket, renewed every
//!   two seconds, kept for three rounds (at least 10 s) after the node stops renewing it;
//! - the stream is trimmed below the older kept upload and below every node's applied
//!   sequence, so a node that is slow, or paused for less than three rounds, always finds
//!   its next change.
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

use super::buckets::bucket;
use super::{ClusterConfig, Replicator, until_ok};
use crate::engine::Engine;
use crate::persist::snapshot;

/// Uploaded snapshots kept; the stream is kept from the older one on.
const KEPT: usize = 2;
/// The lease's key.
const LEASE_KEY: &str = "snapshot-uploader";
/// The key of the list of uploads kept.
const UPLOADS_KEY: &str = "uploads";
/// How often a node records its applied sequence.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// One upload kept: the sequence it covers and its object's name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Upload {
    seq: u64,
    name: String,
}

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
            num_replicas: config.replicas.unwrap_or(1),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())
}

/// The bucket of the uploads list.
async fn uploads_bucket(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
) -> Result<kv::Store, String> {
    bucket(jetstream, config, "uploads", None).await
}

/// How long a lease outlives its last renewal: three rounds (at least 3 s).
fn lease_age(every: Duration) -> Duration {
    (every * 3).max(Duration::from_secs(3))
}

/// How long a node's recorded progress outlives its last renewal: three rounds (at least
/// 10 s, five renewals).
fn progress_age(every: Duration) -> Duration {
    (every * 3).max(Duration::from_secs(10))
}

/// The uploads kept, newest first, and the list's revision (0: no list yet).
async fn kept(uploads: &kv::Store) -> Result<(Vec<Upload>, u64), String> {
    match uploads
        .entry(UPLOADS_KEY)
        .await
        .map_err(|e| e.to_string())?
    {
        None => Ok((Vec::new(), 0)),
        Some(entry) if entry.value.is_empty() => Ok((Vec::new(), entry.revision)),
        Some(entry) => {
            let list: Vec<Upload> =
                serde_json::from_slice(&entry.value).map_err(|e| e.to_string())?;
            Ok((list, entry.revision))
        }
    }
}

/// Before the node loads its data dir: downloads the newest uploaded snapshot into it if
/// that is newer than the newest the dir holds. Gives the sequence downloaded, if any.
pub async fn fetch_newer(
    jetstream: &jetstream::Context,
    config: &ClusterConfig,
    dir: &Path,
) -> Result<Option<u64>, String> {
    let store = store(jetstream, config).await?;
    let uploads = uploads_bucket(jetstream, config).await?;
    let snapshots = dir.join("snapshots");
    let local = snapshot::list(&snapshots)
        .map_err(|e| e.to_string())?
        .first()
        .map_or(0, |(seq, _)| *seq);
    let Some(Upload { seq, name }) = kept(&uploads).await?.0.into_iter().next() else {
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

/// Records this node's applied sequence every [`PROGRESS_EVERY`], until `stopping`.
pub async fn record_progress(
    replicator: Arc<Replicator>,
    jetstream: jetstream::Context,
    config: ClusterConfig,
    every: Duration,
    stopping: CancellationToken,
) {
    let Some(nodes) = until_ok(
        "no nodes bucket yet",
        Duration::from_secs(1),
        &stopping,
        || bucket(&jetstream, &config, "nodes", Some(progress_age(every))),
    )
    .await
    else {
        return;
    };
    let key = format!("node-{}", replicator.node_id());
    loop {
        let applied = replicator.applied_seq().to_string();
        if let Err(e) = nodes.put(key.as_str(), applied.into_bytes().into()).await {
            tracing::debug!(error = %e, "cluster: this node's progress was not recorded");
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(PROGRESS_EVERY) => {}
        }
    }
}

/// The lowest applied sequence the live nodes recorded (`None`: none recorded).
async fn slowest_node(nodes: &kv::Store) -> Result<Option<u64>, String> {
    let mut keys = nodes.keys().await.map_err(|e| e.to_string())?;
    let mut slowest: Option<u64> = None;
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| e.to_string())?;
        let Some(value) = nodes.get(&key).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let applied = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(applied) = applied {
            slowest = Some(slowest.map_or(applied, |s| s.min(applied)));
        }
    }
    Ok(slowest)
}

/// The buckets and store a round uses.
struct Places {
    store: object_store::ObjectStore,
    lease: kv::Store,
    uploads: kv::Store,
    nodes: kv::Store,
}

/// Every `every`: writes this node's snapshot and, while this node holds the lease, uploads
/// it, keeps the newest [`KEPT`] uploads and trims the stream below what every node needs.
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
    let Some(places) = until_ok(
        "no snapshot store or buckets yet",
        second,
        &stopping,
        || async {
            Ok::<_, String>(Places {
                store: store(&jetstream, &config).await?,
                lease: bucket(&jetstream, &config, "lease", Some(lease_age(every))).await?,
                uploads: uploads_bucket(&jetstream, &config).await?,
                nodes: bucket(&jetstream, &config, "nodes", Some(progress_age(every))).await?,
            })
        },
    )
    .await
    else {
        return;
    };
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = round(&engine, &replicator, &places, &stream).await {
            tracing::warn!(error = %e, "cluster: snapshot round failed");
        }
    }
}

/// One round: the local snapshot, then, as the lease holder, the upload and the trim.
async fn round(
    engine: &Arc<Engine>,
    replicator: &Replicator,
    places: &Places,
    stream: &stream::Stream,
) -> Result<(), String> {
    let writer = engine.clone();
    let info = tokio::task::spawn_blocking(move || writer.snapshot())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // A node behind the stream (or stopped) neither takes nor keeps the lease: its
    // snapshot is not the one to give, and holding the lease would stop all uploads.
    if replicator.lag().is_err() || !hold_lease(&places.lease, replicator.node_id()).await? {
        return Ok(());
    }
    let (mut list, revision) = kept(&places.uploads).await?;
    if list.first().is_none_or(|newest| newest.seq < info.seq) {
        let name = upload(&places.store, &info.path).await?;
        list.insert(
            0,
            Upload {
                seq: info.seq,
                name,
            },
        );
        let dropped = list.split_off(KEPT.min(list.len()));
        let value = serde_json::to_vec(&list).map_err(|e| e.to_string())?;
        // Only the holder changes the list; the revision makes sure of it.
        if revision == 0 {
            places
                .uploads
                .create(UPLOADS_KEY, value.into())
                .await
                .map_err(|e| e.to_string())?;
        } else {
            places
                .uploads
                .update(UPLOADS_KEY, value.into(), revision)
                .await
                .map_err(|e| e.to_string())?;
        }
        for gone in dropped {
            if let Err(e) = places.store.delete(&gone.name).await {
                tracing::warn!(error = %e, name = gone.name, "cluster: an old upload was not deleted");
            }
        }
        sweep_unlisted(&places.store, &list).await;
    }
    // Only once there are two: the stream keeps everything after the older, so a node a
    // round behind the newest (or restarting from the older) still finds its next change;
    // and everything after the slowest node's applied sequence.
    if let Some(oldest) = list.get(KEPT - 1) {
        let slowest = slowest_node(&places.nodes).await?.unwrap_or(oldest.seq);
        let keep_from = oldest.seq.min(slowest).saturating_add(1);
        // Only a purge that removes something: NATS 2.9 takes a purge up to sequence 1 for
        // a purge of everything.
        let first = stream
            .clone()
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .first_sequence;
        if keep_from > first.max(1) {
            let purged = stream
                .purge()
                .sequence(keep_from)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(
                seq = info.seq,
                kept_from = keep_from,
                slowest,
                purged = purged.purged,
                "cluster: snapshot uploaded, stream trimmed"
            );
        }
    }
    Ok(())
}

/// Deletes uploaded snapshots the list does not keep (left by a holder that failed half
/// way). The listing may lag behind the list; deleting what it shows is safe either way.
async fn sweep_unlisted(store: &object_store::ObjectStore, list: &[Upload]) {
    let Ok(mut listing) = store.list().await else {
        return;
    };
    while let Some(Ok(info)) = listing.next().await {
        let listed = list.iter().any(|u| u.name == info.name);
        if !info.deleted && !listed && info.name.starts_with("snap-") {
            let _ = store.delete(&info.name).await;
        }
    }
}

/// Uploads the snapshot at `path`; gives its object's name.
async fn upload(store: &object_store::ObjectStore, path: &PathBuf) -> Result<String, String> {
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
    Ok(name)
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
    fn the_uploads_list_reads_back() {
        let list = vec![
            Upload {
                seq: 42,
                name: "snap-00000000000000000042.psnap".into(),
            },
            Upload {
                seq: 7,
                name: "snap-00000000000000000007.psnap".into(),
            },
        ];
        let bytes = serde_json::to_vec(&list).expect("encodes");
        assert_eq!(
            serde_json::from_slice::<Vec<Upload>>(&bytes).expect("decodes"),
            list
        );
    }

    #[test]
    fn progress_and_leases_outlive_three_rounds() {
        assert_eq!(
            lease_age(Duration::from_secs(600)),
            Duration::from_secs(1_800)
        );
        assert_eq!(
            lease_age(Duration::from_millis(500)),
            Duration::from_secs(3)
        );
        assert_eq!(
            progress_age(Duration::from_secs(1)),
            Duration::from_secs(10)
        );
    }
}
