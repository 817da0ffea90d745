//! Importing GeoJSON, NDJSON and OpenStreetMap PBF over HTTP, and offline with
//! `proxima import`.

use serde_json::json;

use crate::common::TestServer;

const HELSINKI: &[u8] = include_bytes!("../../data/helsinki.osm.pbf");

#[tokio::test]
async fn geojson_imports_points_and_lists_other_features_by_index() {
    let s = TestServer::start().await;
    let body = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "g1", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]}, "properties": {"name": "Kiasma", "category": "museum", "architect": "Holl"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "properties": {"id": "g2", "category": "park"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.9]}, "properties": {"id": "g3", "category": "cafe"}}
    ]});
    let (status, out) = s
        .post_body("/v1/pois/import?format=geojson", body.to_string())
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (out["imported"].as_u64(), out["skipped"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(out["errors"][0]["feature"], 1);
    assert_eq!(out["errors"][1]["feature"], 2);
    let (_, poi) = s.get("/v1/pois/g1").await;
    assert_eq!(
        (poi["lat"].as_f64(), poi["lon"].as_f64()),
        (Some(60.17), Some(24.94))
    );
    assert_eq!(poi["tags"], json!({"architect": "Holl"}));
}

#[tokio::test]
async fn ndjson_imports_line_by_line() {
    let s = TestServer::start().await;
    let body = "{\"id\":\"n1\",\"lat\":1,\"lon\":2,\"name\":\"N\",\"category\":\"cafe\",\"rating\":4.1}\n{\"id\":\"n2\",\"lat\":1}\n";
    let (status, out) = s
        .post_body("/v1/pois/import?format=ndjson&strict=false", body)
        .await;
    assert_eq!((status, out["imported"].as_u64()), (200, Some(1)));
    assert_eq!(out["errors"][0]["line"], 2);
    let (status, problem) = s
        .post_body("/v1/pois/import?format=ndjson&strict=true", body)
        .await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("line 2"),
        "{problem}"
    );
}

#[tokio::test]
async fn an_osm_extract_imports_over_http_with_osm_ids() {
    let s = TestServer::start().await;
    let (status, out) = s
        .post_body("/v1/pois/import?format=osm-pbf&mode=replace", HELSINKI)
        .await;
    assert_eq!(status, 200);
    let imported = out["imported"].as_u64().expect("imported");
    assert!(imported > 1000, "{out}");
    assert_eq!(s.state.engine.poi_count() as u64, imported);
    // Cafés near the Helsinki central station, with their OSM ids reachable percent-encoded.
    let (_, near) = s
        .get("/v1/pois/nearby?lat=60.1710&lon=24.9414&radius_m=500&category=cafe&limit=5")
        .await;
    let id = near["results"][0]["id"]
        .as_str()
        .expect("a café within 500 m")
        .to_string();
    assert!(
        id.starts_with("osm:node/") || id.starts_with("osm:way/"),
        "{id}"
    );
    let (status, poi) = s.get(&format!("/v1/pois/{}", id.replace('/', "%2F"))).await;
    assert_eq!((status, poi["category"].as_str()), (200, Some("cafe")));
    // Clients still may not choose ids with a slash.
    let body = json!({"lat": 1, "lon": 1, "name": "x", "category": "cafe"});
    assert_eq!(s.put_json("/v1/pois/a%2Fb", &body).await.0, 400);
}

#[tokio::test]
async fn a_damaged_osm_extract_is_a_clear_400_and_changes_nothing() {
    let s = TestServer::start().await;
    s.put_poi("kept", 1.0, 1.0, "cafe", None).await;
    let (status, problem) = s
        .post_body(
            "/v1/pois/import?format=osm-pbf&mode=replace",
            &HELSINKI[..HELSINKI.len() / 3],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("osm-pbf"),
        "{problem}"
    );
    assert_eq!(s.state.engine.poi_count(), 1);
}

#[tokio::test]
async fn the_bundled_sample_holds_the_cities_and_helsinki() {
    let s = TestServer::start_with(|c| c.no_sample = false).await;
    let (_, body) = s
        .get("/v1/pois/nearby?lat=60.1699&lon=24.9384&radius_m=1000&category=museum&limit=3")
        .await;
    assert!(
        !TestServer::ids(&body).is_empty(),
        "museums near Helsinki's centre: {body}"
    );
    assert!(s.state.engine.poi_count() > 34_006 + 1000);
}

#[tokio::test]
async fn proxima_import_fills_a_data_dir_that_serve_then_starts_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("extra.csv");
    std::fs::write(
        &csv,
        "id,lat,lon,name,category\nx1,60.17,24.94,Extra,cafe\nx2,bad,24.94,Bad,cafe\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    let pbf = concat!(env!("CARGO_MANIFEST_DIR"), "/data/helsinki.osm.pbf");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxima"))
        .args(["import", pbf])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with("imported ")
            && summary.contains("skipped 1")
            && summary.contains("line 3"),
        "{summary}"
    );
    let strict = std::process::Command::new(env!("CARGO_BIN_EXE_proxima"))
        .args(["import", "--strict", "--mode", "replace"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert!(
        !strict.status.success(),
        "a strict import with a bad row fails"
    );

    let client = reqwest::Client::new();
    let mut p = crate::process::serve(&data, &[]).expect("serve starts");
    p.ready(&client).await.expect("ready");
    let status = client
        .get(format!("{}/v1/pois/x1", p.base))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 200, "the imported POI is served");
    let status = client
        .get(format!("{}/v1/pois/658225", p.base))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 404, "a data dir with state does not get the sample");
}
