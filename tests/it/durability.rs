//! Durability: nothing acknowledged is lost when the process is killed; damage is reported
//! precisely; snapshots plus the log replay to exactly the state that was live.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::process::{self, Proc};

async fn start(dir: &std::path::Path, flags: &[&str], client: &reqwest::Client) -> Proc {
    let mut p = process::serve(dir, flags).expect("server starts");
    p.ready(client).await.expect("server gets ready");
    p
}

/// Stores a café with id `id` through `PUT {base}/v1/pois/{id}`; returns the status.
async fn put_cafe(client: &reqwest::Client, base: &str, id: &str) -> u16 {
    let poi = json!({"lat": 1, "lon": 1, "name": id, "category": "cafe"});
    client
        .put(format!("{base}/v1/pois/{id}"))
        .json(&poi)
        .send()
        .await
        .expect("put")
        .status()
        .as_u16()
}

/// The status of `GET {base}{path}`.
async fn status_of(client: &reqwest::Client, base: &str, path: &str) -> u16 {
    client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("request reaches the server")
        .status()
        .as_u16()
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

/// What the writer was told was done.
#[derive(Default)]
struct Acked {
    pois: BTreeMap<String, bool>,    // id -> exists
    positions: HashMap<String, i64>, // traveller -> newest acknowledged ts
}

#[tokio::test]
async fn every_acknowledged_write_survives_sigkill() {
    for fsync in ["never", "batch"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = reqwest::Client::new();
        let mut p = start(dir.path(), &["--no-sample", "--fsync", fsync], &client).await;
        let base = p.base.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(std::sync::Mutex::new(Acked::default()));
        let writer = {
            let (stop, acked, client, base) =
                (stop.clone(), acked.clone(), client.clone(), base.clone());
            tokio::spawn(async move {
                // Reports from now on: one further ahead than --max-clock-skew is refused.
                let ts0 = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_millis() as i64;
                for i in 0..100_000i64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("poi-{i}");
                    let body = json!({"lat": 60.0 + (i % 100) as f64 * 0.001, "lon": 24.9, "name": "x", "category": "cafe"});
                    let Ok(r) = client
                        .put(format!("{base}/v1/pois/{id}"))
                        .json(&body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if r.status() != 201 {
                        break;
                    }
                    acked.lock().expect("lock").pois.insert(id, true);
                    if i % 3 == 2 {
                        let victim = format!("poi-{}", i - 1);
                        let Ok(r) = client
                            .delete(format!("{base}/v1/pois/{victim}"))
                            .send()
                            .await
                        else {
                            break;
                        };
                        if r.status() != 204 {
                            break;
                        }
                        acked.lock().expect("lock").pois.insert(victim, false);
                    }
                    let traveller = format!("t{}", i % 20);
                    let line = json!({"id": traveller, "lat": 60.1, "lon": 24.9 + i as f64 * 1e-5, "ts": ts0 + i});
                    let Ok(r) = client
                        .post(format!("{base}/v1/positions"))
                        .header("content-type", "application/x-ndjson")
                        .body(format!("{line}\n"))
                        .send()
                        .await
                    else {
                        break;
                    };
                    if r.status() != 200 {
                        break;
                    }
                    let Ok(counts) = r.json::<serde_json::Value>().await else {
                        break;
                    };
                    assert_eq!(counts["accepted"], 1, "{counts}");
                    acked
                        .lock()
                        .expect("lock")
                        .positions
                        .insert(traveller, ts0 + i);
                }
            })
        };
        // Let the writer get going, then kill the server under it.
        for _ in 0..400 {
            if acked.lock().expect("lock").pois.len() >= 150 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let status = p.signal_and_wait("-KILL");
        assert!(!status.success());
        stop.store(true, Ordering::Relaxed);
        writer.await.expect("writer task");
        drop(p);

        let acked = std::mem::take(&mut *acked.lock().expect("lock"));
        assert!(
            acked.pois.len() >= 50,
            "the writer got going ({} POIs)",
            acked.pois.len()
        );
        let p = start(dir.path(), &["--no-sample", "--fsync", fsync], &client).await;
        for (id, exists) in &acked.pois {
            let status = status_of(&client, &p.base, &format!("/v1/pois/{id}")).await;
            let want = if *exists { 200 } else { 404 };
            assert_eq!(
                status,
                want,
                "--fsync {fsync}: POI {id} (acknowledged as {})",
                if *exists { "stored" } else { "deleted" }
            );
        }
        for (traveller, ts) in &acked.positions {
            let r = client
                .get(format!(
                    "{}/v1/travellers/{traveller}?viewer={traveller}",
                    p.base
                ))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), 200, "--fsync {fsync}: traveller {traveller}");
            let body: serde_json::Value = r.json().await.expect("json");
            assert!(
                body["ts"].as_i64().expect("ts") >= *ts,
                "--fsync {fsync}: {traveller} lost its acknowledged position"
            );
        }
    }
}

#[tokio::test]
async fn a_clean_restart_keeps_everything_and_does_not_reload_the_sample() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let mut p = start(dir.path(), &[], &client).await;
    assert_eq!(put_cafe(&client, &p.base, "mine").await, 201);
    assert_eq!(
        client
            .delete(format!("{}/v1/pois/658225", p.base))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    assert!(p.signal_and_wait("-TERM").success(), "SIGTERM exits 0");
    let snapshots = std::fs::read_dir(dir.path().join("snapshots"))
        .expect("snapshots dir")
        .count();
    assert!(snapshots >= 1, "shutdown wrote a snapshot");
    let p = start(dir.path(), &[], &client).await;
    assert_eq!(status_of(&client, &p.base, "/v1/pois/mine").await, 200);
    assert_eq!(
        status_of(&client, &p.base, "/v1/pois/658225").await,
        404,
        "the deleted city stays deleted: the sample is not loaded again"
    );
}

/// Writes a few records and kills the server, leaving them only in the log.
async fn records_in_the_log(dir: &std::path::Path, client: &reqwest::Client, n: usize) {
    let mut p = start(dir, &["--no-sample"], client).await;
    for i in 0..n {
        assert_eq!(put_cafe(client, &p.base, &format!("p{i}")).await, 201);
    }
    p.signal_and_wait("-KILL");
}

#[tokio::test]
async fn a_torn_last_record_is_cut_off_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    records_in_the_log(dir.path(), &client, 5).await;
    let segment = last_segment(dir.path());
    let len = std::fs::metadata(&segment).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open")
        .set_len(len - 7)
        .expect("truncate");
    let p = start(dir.path(), &["--no-sample"], &client).await;
    let text = p.stderr_text();
    assert!(
        text.contains("torn"),
        "a warning says what was dropped: {text}"
    );
    for i in 0..4 {
        assert_eq!(
            status_of(&client, &p.base, &format!("/v1/pois/p{i}")).await,
            200
        );
    }
    assert_eq!(
        status_of(&client, &p.base, "/v1/pois/p4").await,
        404,
        "the torn record is gone"
    );
}

/// Writes `records` records, kills the server, changes the bytes of the log's last segment
/// with `damage`, and starts the server again, which must fail: returns what it said, and
/// the segment.
async fn start_after_damage(
    records: usize,
    damage: impl FnOnce(&mut [u8]),
) -> (String, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    records_in_the_log(dir.path(), &client, records).await;
    let segment = last_segment(dir.path());
    let mut bytes = std::fs::read(&segment).expect("read");
    damage(&mut bytes);
    std::fs::write(&segment, &bytes).expect("write");
    let err = match process::serve(dir.path(), &["--no-sample"]) {
        Err(stderr) => stderr,
        Ok(mut p) => p.ready(&client).await.expect_err("recovery must fail"),
    };
    (err, segment)
}

#[tokio::test]
async fn damage_in_the_middle_of_the_log_stops_the_start_naming_file_and_offset() {
    // A byte inside the first record's body.
    let (err, segment) = start_after_damage(5, |bytes| bytes[40] ^= 0xff).await;
    assert!(
        err.contains(&segment.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("offset 16"), "names the offset: {err}");
}

#[tokio::test]
async fn a_damaged_newest_snapshot_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let mut p = start(dir.path(), &["--no-sample"], &client).await;
    for i in 0..6 {
        assert_eq!(put_cafe(&client, &p.base, &format!("p{i}")).await, 201);
        if i % 2 == 1 {
            let r = client
                .post(format!("{}/v1/admin/snapshot", p.base))
                .send()
                .await
                .expect("snapshot");
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.expect("json");
            assert!(body["bytes"].as_u64().expect("bytes") > 40 && body["path"].is_string());
        }
    }
    p.signal_and_wait("-KILL");
    let mut snapshots: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    snapshots.sort();
    assert_eq!(snapshots.len(), 2, "two snapshots are kept");
    let newest = snapshots.pop().expect("newest");
    let mut bytes = std::fs::read(&newest).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&newest, &bytes).expect("write");
    let p = start(dir.path(), &["--no-sample"], &client).await;
    assert!(p.stderr_text().contains("snapshot damaged"));
    for i in 0..6 {
        assert_eq!(
            status_of(&client, &p.base, &format!("/v1/pois/p{i}")).await,
            200,
            "p{i}"
        );
    }
}

#[tokio::test]
async fn a_data_dir_from_a_newer_version_is_refused_clearly() {
    let (err, _) = start_after_damage(1, |bytes| {
        bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    })
    .await;
    assert!(err.contains("format version 99 is newer"), "{err}");
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let _first = start(dir.path(), &["--no-sample"], &client).await;
    let err = match process::serve(dir.path(), &["--no-sample"]) {
        Err(stderr) => stderr,
        Ok(mut p) => p.ready(&client).await.expect_err("the second must fail"),
    };
    assert!(err.contains("in use by another Proxima process"), "{err}");
}

/// A data directory written by format version 1 (a snapshot and a log after it), checked in
/// under `tests/fixtures/v1` (written by `examples/write_fixture.rs`): this build must keep
/// reading it. Write a new fixture only when adding a new version, never to make this test
/// pass.
#[test]
fn format_version_1_fixture_still_recovers() {
    let (engine, report) = recover_fixture("v1");
    assert!(
        report.snapshot.is_some() && report.replayed == 3,
        "{report:?}"
    );
    let (pois, travellers) = engine.dump();
    let ids: Vec<&str> = pois.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["fixture-cafe", "fixture-museum"]);
    assert_eq!(
        pois[0].tags.get("cuisine").map(String::as_str),
        Some("coffee")
    );
    assert_eq!(travellers.len(), 1);
    assert_eq!(travellers[0].trail.len(), 2);
    assert_eq!(
        travellers[0].sharing.visibility(),
        proxima::travellers::Visibility::Friends
    );
}

/// Recovers a copy of the checked-in data directory `tests/fixtures/<version>`.
fn recover_fixture(version: &str) -> (proxima::engine::Engine, proxima::engine::RecoveryReport) {
    use proxima::clock::ManualClock;
    use proxima::engine::{Engine, EngineConfig, LiveConfig};
    use proxima::persist::wal::WalOptions;
    use proxima::pois::CursorKey;
    use proxima::travellers::TravellerConfig;

    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version);
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["snapshots", "wal"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(fixture.join(sub)).expect("fixture present") {
            let path = entry.expect("entry").path();
            std::fs::copy(
                &path,
                dir.path().join(sub).join(path.file_name().expect("name")),
            )
            .expect("copy");
        }
    }
    let engine = Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock: Arc::new(ManualClock::new(1_800_000_000_000)),
        travellers: TravellerConfig {
            trail_capacity: 32,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    });
    let report = engine
        .recover(dir.path(), WalOptions::default())
        .unwrap_or_else(|e| panic!("{version} recovers: {e}"));
    (engine, report)
}

/// Version 2 (fences with owners, trails' sharing thresholds, event intervals): a snapshot
/// and four records in the log.
#[test]
fn format_version_2_fixture_still_recovers() {
    use proxima::fences::{FenceKey, FenceKind};

    let (engine, report) = recover_fixture("v2");
    assert!(
        report.snapshot.is_some() && report.replayed == 4,
        "{report:?}"
    );
    let (pois, travellers) = engine.dump();
    let ids: Vec<&str> = pois.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["fixture-cafe", "fixture-museum"]);
    assert_eq!(travellers.len(), 1);
    assert_eq!(travellers[0].trail.len(), 2);
    assert_eq!(
        travellers[0].sharing.visibility(),
        proxima::travellers::Visibility::Friends
    );
    let home = engine
        .fence(&FenceKey::new("key:0123456789abcdef", "home"))
        .expect("the snapshot's fence, under its owner");
    assert_eq!(home.viewer.as_deref(), Some("mum"));
    assert!(matches!(home.kind, FenceKind::Static(_)));
    let near = engine
        .fence(&FenceKey::new("traveller:mum", "near-them"))
        .expect("the log's roaming fence, under its owner");
    assert!(matches!(
        near.kind,
        FenceKind::Roaming { ref around, radius_m } if around == "fixture-traveller" && radius_m == 1000.0
    ));
    assert_eq!(engine.fence_count(), 2, "no fence under another owner");
}

#[test]
fn format_version_4_fixture_still_recovers() {
    let (engine, report) = recover_fixture("v4");
    assert!(
        report.snapshot.is_some() && report.replayed == 6,
        "{report:?}"
    );
    let (pois, travellers) = engine.dump();
    assert_eq!(pois.len(), 2);
    assert_eq!(travellers.len(), 1);
    assert_eq!(engine.fence_count(), 2);
    let trip = engine.trip("fixture-trip").expect("the snapshot's trip");
    assert_eq!(trip.trip.traveller(), "fixture-traveller");
    assert_eq!(trip.followers, ["mum"]);
    let tokens = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v4/tokens.txt"),
    )
    .expect("the fixture's tokens");
    let token = |what: &str| {
        tokens
            .lines()
            .find_map(|l| l.strip_prefix(what)?.strip_prefix(' '))
            .expect("a token")
            .to_owned()
    };
    assert!(
        engine.open_link(&token("link")).is_some(),
        "the snapshot's link"
    );
    assert_eq!(
        engine
            .open_device(&token("device"))
            .map(|(who, _)| who)
            .as_deref(),
        Some("fixture-traveller"),
        "the log's device"
    );
    assert!(
        engine.open_device(&token("revoked")).is_none(),
        "the snapshot's device, revoked in the log"
    );
    let devices: Vec<String> = engine
        .devices_of("fixture-traveller")
        .iter()
        .map(|d| d.name().to_owned())
        .collect();
    assert_eq!(devices, ["phone"]);
}

#[test]
fn format_version_5_fixture_still_recovers() {
    let (engine, report) = recover_fixture("v5");
    assert!(
        report.snapshot.is_some() && report.replayed == 8,
        "{report:?}"
    );
    assert_eq!(
        engine.trip("fixture-trip").expect("the trip").followers,
        ["mum"]
    );
    let zones: Vec<String> = engine
        .privacy_zones_of("fixture-traveller")
        .iter()
        .map(|z| z.id().to_owned())
        .collect();
    assert_eq!(zones, ["home", "work"], "the snapshot's zone and the log's");
    // Its friend sees it nowhere now: it is at work, in the log's zone; it sees itself.
    assert!(engine.traveller("fixture-traveller", Some("mum")).is_none());
    assert!(
        engine
            .traveller("fixture-traveller", Some("fixture-traveller"))
            .is_some()
    );
    let (route, _) = engine
        .route("fixture-trip", i64::MIN, i64::MAX, None, 100)
        .expect("reads");
    let imported: Vec<i64> = route
        .iter()
        .filter(|p| p.lat == 60.15)
        .map(|p| p.ts - 1_800_000_000_000)
        .collect();
    assert_eq!(
        imported,
        [-2_999_999, -2_999_998, -2_999_997],
        "the log's import"
    );
}

/// A newest snapshot that is intact (its checksums match) but holds an item that does not
/// decode is damage too: recovery falls back to the previous snapshot and the log after it.
#[test]
fn a_snapshot_with_an_undecodable_item_falls_back_to_the_previous_one() {
    use proxima::persist::snapshot::{SnapshotWriter, list};
    use proxima::persist::wal::WalOptions;

    let dir = tempfile::tempdir().expect("temp dir");
    let engine = crate::common::bare_engine;
    let first = engine();
    first
        .recover(dir.path(), WalOptions::default())
        .expect("fresh dir");
    for i in 0..3 {
        let poi = crate::common::plain_cafe(&format!("p{i}"));
        first
            .upsert_poi(poi)
            .expect("upsert")
            .wait()
            .expect("durable");
        first.snapshot().expect("snapshot");
    }
    drop(first);
    let snapshots = dir.path().join("snapshots");
    let (newest_seq, newest) = list(&snapshots)
        .expect("list")
        .into_iter()
        .next()
        .expect("a snapshot");
    std::fs::remove_file(&newest).expect("remove");
    let mut forged = SnapshotWriter::create(&snapshots, newest_seq).expect("create");
    forged.item(&"not a snapshot item").expect("item");
    forged.finish().expect("finish");

    let second = engine();
    let report = second
        .recover(dir.path(), WalOptions::default())
        .expect("recovers from the previous snapshot");
    assert_ne!(report.snapshot, Some(newest), "{report:?}");
    assert!(report.snapshot.is_some(), "{report:?}");
    let ids: Vec<String> = second.dump().0.into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["p0", "p1", "p2"], "nothing lost");
}

/// `time`'s RFC 3339 for Unix seconds, as Overland writes (UTC).
fn iso(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

#[tokio::test]
async fn every_overland_batch_answered_ok_survives_sigkill_in_full() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let mut p = start(dir.path(), &["--no-sample"], &client).await;
    let base = p.base.clone();
    // The traveller is on a trip, so its route keeps every point, not just the newest.
    let s0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        - 86_400;
    let trip = json!({"traveller": "ann", "title": "Home", "started_at": s0 * 1000});
    let r = client
        .put(format!("{base}/v1/trips/home"))
        .json(&trip)
        .send()
        .await
        .expect("put trip");
    assert_eq!(r.status(), 201);
    let made: serde_json::Value = client
        .post(format!("{base}/v1/travellers/ann/devices"))
        .json(&json!({"name": "phone"}))
        .send()
        .await
        .expect("device")
        .json()
        .await
        .expect("json");
    let token = made["token"].as_str().expect("a token").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<std::sync::Mutex<Vec<i64>>> = Arc::default();
    let writer = {
        let (stop, acked, client, base) =
            (stop.clone(), acked.clone(), client.clone(), base.clone());
        tokio::spawn(async move {
            for batch in 0..10_000i64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seconds: Vec<i64> = (0..50).map(|k| s0 + batch * 50 + k).collect();
                let locations: Vec<serde_json::Value> = seconds
                    .iter()
                    .map(|&s| {
                        json!({"type": "Feature",
                               "geometry": {"type": "Point", "coordinates": [24.9 + (s % 1000) as f64 * 1e-5, 60.1]},
                               "properties": {"timestamp": iso(s), "horizontal_accuracy": 5}})
                    })
                    .collect();
                let Ok(r) = client
                    .post(format!("{base}/v1/ingest/overland"))
                    .bearer_auth(&token)
                    .json(&json!({"locations": locations}))
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(answer) = r.json::<serde_json::Value>().await else {
                    break;
                };
                if answer["result"] != "ok" {
                    break;
                }
                assert_eq!(answer["accepted"], 50, "{answer}");
                acked
                    .lock()
                    .expect("lock")
                    .extend(seconds.iter().map(|s| s * 1000));
            }
        })
    };
    for _ in 0..500 {
        if acked.lock().expect("lock").len() >= 2_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!p.signal_and_wait("-KILL").success());
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer task");
    drop(p);
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(
        acked.len() >= 500,
        "the writer got going ({} points)",
        acked.len()
    );

    let p = start(dir.path(), &["--no-sample"], &client).await;
    let mut stored: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("{}/v1/trips/home/route?viewer=ann&limit=10000", p.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .send()
            .await
            .expect("route")
            .json()
            .await
            .expect("json");
        for part in page["properties"]["ts"].as_array().expect("times") {
            stored.extend(
                part.as_array()
                    .expect("a part")
                    .iter()
                    .map(|t| t.as_i64().expect("ts")),
            );
        }
        cursor = page["properties"]["next_cursor"].as_str().map(String::from);
        if cursor.is_none() {
            break;
        }
    }
    let stored: std::collections::BTreeSet<i64> = stored.into_iter().collect();
    let lost: Vec<&i64> = acked.iter().filter(|ts| !stored.contains(ts)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged points lost, the first at {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
}
