//! A data directory holding records that the edge would refuse, with valid checksums (as a
//! crafted or buggy file would hold them): recovery refuses them by name and the server
//! exits non-zero, instead of panicking later on the network path or staying up at 503.

use std::collections::BTreeMap;
use std::path::Path;

use proxima::persist::wal::{Wal, WalOptions};

use crate::process;

/// `Mutation::UpsertPoi` as the log writes it, with fields no constructor would accept.
#[derive(serde::Serialize)]
enum ForgedMutation<'a> {
    UpsertPoi(&'a ForgedPoi),
}

#[derive(serde::Serialize)]
struct ForgedPoi {
    id: String,
    position: ForgedLatLon,
    name: String,
    category: String,
    tags: BTreeMap<String, String>,
    rating: Option<f64>,
}

#[derive(serde::Serialize)]
struct ForgedLatLon {
    lat: f64,
    lon: f64,
}

/// A data dir with one good POI logged, then `forged` appended as the next record.
fn data_dir_with(dir: &Path, forged: &ForgedPoi) {
    let first = crate::common::bare_engine();
    let report = first
        .recover(dir, WalOptions::default())
        .expect("fresh dir");
    assert!(report.fresh);
    let good = crate::common::plain_cafe("good");
    first
        .upsert_poi(good)
        .expect("upsert")
        .wait()
        .expect("durable");
    drop(first);
    let wal = Wal::open(&dir.join("wal"), 2, WalOptions::default()).expect("open the log");
    let payload = proxima::persist::encode(&ForgedMutation::UpsertPoi(forged)).expect("encodes");
    let (seq, ticket) = wal.append(payload);
    assert_eq!(seq, 2);
    ticket.wait().expect("durable");
}

fn poi(id: &str, lat: f64, category: &str) -> ForgedPoi {
    ForgedPoi {
        id: id.into(),
        position: ForgedLatLon { lat, lon: 24.9 },
        name: "x".into(),
        category: category.into(),
        tags: BTreeMap::new(),
        rating: None,
    }
}

#[test]
fn a_replayed_record_is_validated_as_the_edge_validates_it() {
    for (forged, says) in [
        (poi("nan", f64::NAN, "cafe"), "lat must be a finite number"),
        (poi("far", 91.0, "cafe"), "lat must be a finite number"),
        (poi("bad category", 60.0, "Café!"), "category must be"),
        (poi("", 60.0, "cafe"), "id:"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        data_dir_with(dir.path(), &forged);
        let err = crate::common::bare_engine()
            .recover(dir.path(), WalOptions::default())
            .expect_err("a record the edge would refuse");
        let text = err.to_string();
        assert!(text.contains("record 2") && text.contains(says), "{text}");
    }
}

#[tokio::test]
async fn a_failed_recovery_stops_the_server_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || data_dir_with(&path, &poi("nan", f64::NAN, "cafe")))
        .await
        .expect("written");
    let client = reqwest::Client::new();
    let said = match process::serve(dir.path(), &["--no-sample"]) {
        Err(stderr) => stderr,
        Ok(mut p) => p.ready(&client).await.expect_err("recovery must fail"),
    };
    assert!(said.contains("exited with exit status: 1"), "{said}");
    assert!(said.contains("lat must be a finite number"), "{said}");
}
