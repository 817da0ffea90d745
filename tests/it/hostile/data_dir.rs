//! A damaged data dir: snapshots whose headers claim impossible log positions (checksums
//! and all), and a dir whose every snapshot is unreadable. Recovery counts the first as
//! damage and never starts over the second as if it were fresh.

use std::path::{Path, PathBuf};

use proxima::engine::{DamagedState, EngineError};
use proxima::persist::snapshot::{self, SnapshotWriter};
use proxima::persist::wal::WalOptions;

use crate::common::{bare_engine, plain_cafe};
use crate::process;

/// A data dir with `n` cafés, a snapshot after each (two are kept), and the log.
fn cafes_with_snapshots(dir: &Path, n: usize) {
    let engine = bare_engine();
    engine.recover(dir, WalOptions::default()).expect("fresh");
    for i in 0..n {
        engine
            .upsert_poi(plain_cafe(&format!("c{i}")))
            .expect("upsert")
            .wait()
            .expect("durable");
        engine.snapshot().expect("snapshot");
    }
}

/// Rewrites the newest snapshot under another sequence number, its payload and checksums
/// intact (what a damaged header that still checks out would say). Returns its new path.
fn reseal_newest_at(dir: &Path, seq: u64) -> PathBuf {
    let snapshots = dir.join("snapshots");
    let (_, newest) = snapshot::list(&snapshots).expect("list").remove(0);
    let bytes = std::fs::read(&newest).expect("read");
    std::fs::remove_file(&newest).expect("remove");
    let forged = snapshots.join(format!("snap-{seq:020}.psnap"));
    std::fs::write(&forged, snapshot::seal(seq, &bytes[40..])).expect("write");
    forged
}

fn ids(engine: &proxima::engine::Engine) -> Vec<String> {
    engine.dump().0.into_iter().map(|p| p.id).collect()
}

#[test]
fn a_snapshot_at_the_last_sequence_number_is_damage_and_the_log_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    cafes_with_snapshots(dir.path(), 3);
    reseal_newest_at(dir.path(), u64::MAX);
    let engine = bare_engine();
    let report = engine
        .recover(dir.path(), WalOptions::default())
        .expect("falls back to the previous snapshot");
    assert!(report.snapshot.is_some() && !report.fresh, "{report:?}");
    assert_eq!(ids(&engine), ["c0", "c1", "c2"], "nothing lost");
    // The log goes on after its real end: a write, then a restart, both work.
    engine
        .upsert_poi(plain_cafe("after"))
        .expect("upsert")
        .wait()
        .expect("durable");
    drop(engine);
    let again = bare_engine();
    again
        .recover(dir.path(), WalOptions::default())
        .expect("the next start recovers too");
    assert_eq!(ids(&again), ["after", "c0", "c1", "c2"]);
}

#[test]
fn a_snapshot_past_the_logs_end_is_damage() {
    let dir = tempfile::tempdir().expect("temp dir");
    cafes_with_snapshots(dir.path(), 3);
    // The log holds records 1 to 3; a snapshot claiming record 1,000 never was.
    reseal_newest_at(dir.path(), 1_000);
    let engine = bare_engine();
    let report = engine
        .recover(dir.path(), WalOptions::default())
        .expect("falls back to the previous snapshot");
    assert!(
        report
            .snapshot
            .is_some_and(|p| !p.ends_with("snap-00000000000000001000.psnap")),
        "the impossible snapshot is not the one loaded"
    );
    assert_eq!(ids(&engine), ["c0", "c1", "c2"]);
    engine
        .upsert_poi(plain_cafe("after"))
        .expect("upsert")
        .wait()
        .expect("durable");
    drop(engine);
    let again = bare_engine();
    again
        .recover(dir.path(), WalOptions::default())
        .expect("the log has no gap");
    assert_eq!(ids(&again), ["after", "c0", "c1", "c2"]);
}

/// A dir whose only snapshot is unreadable and which holds no log at all.
fn only_damaged_snapshots(dir: &Path) -> PathBuf {
    let snapshots = dir.join("snapshots");
    let mut writer = SnapshotWriter::create(&snapshots, 7).expect("create");
    writer.item(&"not a snapshot item").expect("item");
    writer.finish().expect("finish").path
}

#[test]
fn every_snapshot_unreadable_and_no_log_refuses_to_start_naming_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let damaged = only_damaged_snapshots(dir.path());
    let err = bare_engine()
        .recover(dir.path(), WalOptions::default())
        .expect_err("refuses");
    assert!(
        matches!(err, EngineError::UnreadableSnapshots { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&damaged.display().to_string()), "{text}");
    assert!(text.contains("--start-empty-if-damaged"), "{text}");
    assert!(damaged.exists(), "nothing was removed");
}

#[test]
fn starting_empty_over_unreadable_snapshots_moves_them_aside_never_deletes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let damaged = only_damaged_snapshots(dir.path());
    let engine = bare_engine();
    let report = engine
        .recover_with(
            dir.path(),
            WalOptions::default(),
            DamagedState::MoveAsideAndStartEmpty,
        )
        .expect("starts empty");
    assert!(
        !report.fresh,
        "never fresh: the sample is not loaded over it"
    );
    assert_eq!(engine.poi_count(), 0);
    assert!(!damaged.exists());
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("damaged-"))
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(aside[0].join(damaged.file_name().expect("name")).exists());
}

#[tokio::test]
async fn the_server_never_loads_the_sample_over_unreadable_snapshots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let damaged = only_damaged_snapshots(dir.path());
    let client = reqwest::Client::new();
    // Without the flag: it stops, naming the file.
    let err = match process::serve(dir.path(), &[]) {
        Err(stderr) => stderr,
        Ok(mut p) => p.ready(&client).await.expect_err("must not start"),
    };
    assert!(err.contains(&damaged.display().to_string()), "{err}");
    // With it: empty, and the bundled sample is not loaded.
    let mut p = process::serve(dir.path(), &["--start-empty-if-damaged"]).expect("starts");
    p.ready(&client).await.expect("ready");
    let stats: serde_json::Value = client
        .get(format!("{}/v1/stats", p.base))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["pois"], 0, "{stats}");
}
