//! Track imports over HTTP (`POST /v1/trips/{id}/import`): a GPX written by `gpsbabel`
//! from another format imports with the same points; Google Takeout files generated in
//! both shapes (the old `Records.json`, larger than one chunk, and the newer timeline
//! export) import with bad records and points outside the trip reported by position; an
//! import sent twice changes nothing the second time; a file that is not its format is a
//! 400 that stores nothing; and only the trip's traveller (or a key) may import into it.

use serde_json::{Value, json};

use crate::common::TestServer;

/// A trip for `ann` from `t0`, open-ended.
async fn trip(s: &TestServer, id: &str, t0: i64) {
    let (status, body) = s
        .put_json(
            &format!("/v1/trips/{id}"),
            &json!({"traveller": "ann", "title": "Imported", "started_at": t0}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn import(s: &TestServer, id: &str, format: &str, body: Vec<u8>) -> (u16, Value) {
    s.send(
        s.client
            .post(s.url(&format!("/v1/trips/{id}/import?format={format}")))
            .body(body),
    )
    .await
}

/// Every point of the trip's route, as its traveller reads it: `(ts, lat, lon)`.
async fn route(s: &TestServer, id: &str) -> Vec<(i64, f64, f64)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/trips/{id}/route?viewer=ann&limit=100000"),
            Some(c) => format!("/v1/trips/{id}/route?viewer=ann&limit=100000&cursor={c}"),
        };
        let (status, feature) = s.get(&path).await;
        assert_eq!(status, 200, "{feature}");
        let lines = feature["geometry"]["coordinates"]
            .as_array()
            .expect("lines");
        let times = feature["properties"]["ts"].as_array().expect("times");
        for (line, ts) in lines.iter().zip(times) {
            for (p, t) in line
                .as_array()
                .expect("a line")
                .iter()
                .zip(ts.as_array().expect("times"))
            {
                out.push((
                    t.as_i64().expect("ts"),
                    p[1].as_f64().expect("lat"),
                    p[0].as_f64().expect("lon"),
                ));
            }
        }
        match feature["properties"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_gpx_written_by_gpsbabel_from_a_csv_imports_with_the_same_points() {
    let Some(gpsbabel) = crate::common::outside_program(
        "a_gpx_written_by_gpsbabel_from_a_csv_imports_with_the_same_points",
        "gpsbabel",
        "PROXIMA_REQUIRE_GPSBABEL",
        "apt-get install gpsbabel",
    ) else {
        return;
    };
    // A walk near the antimeridian, a point every 5 s, written as gpsbabel's CSV.
    let t0 = 1_714_557_600_000i64; // 2024-05-01T10:00:00Z
    let points: Vec<(i64, f64, f64)> = (0..500i64)
        .map(|i| {
            let lon = 179.995 + i as f64 * 2e-5;
            // GPX longitudes are in [-180, 180): the `gpx` crate refuses a document with 180.
            let lon = if lon >= 180.0 { lon - 360.0 } else { lon };
            (t0 + i * 5_000, -16.5 + i as f64 * 1.5e-5, lon)
        })
        .collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    let (csv, gpx) = (dir.path().join("walk.csv"), dir.path().join("walk.gpx"));
    let mut text = String::from("Latitude,Longitude,Date,Time\n");
    for (ts, lat, lon) in &points {
        let at = time::OffsetDateTime::from_unix_timestamp(ts / 1000).expect("a time");
        text.push_str(&format!(
            "{lat:.7},{lon:.7},{:04}/{:02}/{:02},{:02}:{:02}:{:02}\n",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ));
    }
    std::fs::write(&csv, text).expect("written");
    let status = std::process::Command::new(gpsbabel)
        .args(["-i", "unicsv,utc=0", "-f"])
        .arg(&csv)
        .args(["-x", "transform,trk=wpt,del", "-o", "gpx,gpxver=1.1", "-F"])
        .arg(&gpx)
        .status()
        .expect("gpsbabel runs");
    assert!(status.success(), "gpsbabel wrote the GPX");
    let s = TestServer::start().await;
    trip(&s, "walk", t0).await;
    let (status, body) = import(&s, "walk", "gpx", std::fs::read(&gpx).expect("the GPX")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 500, "{body}");
    assert_eq!(body["skipped"], 0, "{body}");
    let stored = route(&s, "walk").await;
    assert_eq!(stored.len(), points.len());
    for (got, want) in stored.iter().zip(&points) {
        assert_eq!(got.0, want.0);
        assert!(
            (got.1 - want.1).abs() < 1e-7 && (got.2 - want.2).abs() < 1e-7,
            "{got:?} {want:?}"
        );
    }
}

/// A `Records.json` of `n` records a second apart from `t0`, with every 1,000th record
/// broken (no longitude) and, in the old style, every other record's time in
/// `timestampMs`.
fn records_json(t0: i64, n: i64) -> Vec<u8> {
    let mut out = String::from("{\"locations\": [\n");
    for i in 0..n {
        if i > 0 {
            out.push_str(",\n");
        }
        let (lat, lon) = (473_000_000 + i * 10, 85_000_000 + i * 7);
        let ts = t0 + i * 1_000;
        if i % 1_000 == 999 {
            out.push_str(&format!(
                "{{\"latitudeE7\": {lat}, \"timestampMs\": \"{ts}\"}}"
            ));
        } else if i % 2 == 0 {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1_000_000)
                .expect("a time")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formats");
            out.push_str(&format!(
                "{{\"latitudeE7\": {lat}, \"longitudeE7\": {lon}, \"accuracy\": 12, \"source\": \"WIFI\", \"activity\": [{{\"activity\": [{{\"type\": \"STILL\", \"confidence\": 90}}], \"timestamp\": \"{at}\"}}], \"timestamp\": \"{at}\"}}"
            ));
        } else {
            out.push_str(&format!(
                "{{\"timestampMs\": \"{ts}\", \"latitudeE7\": {lat}, \"longitudeE7\": {lon}, \"accuracy\": 5}}"
            ));
        }
    }
    out.push_str("\n]}\n");
    out.into_bytes()
}

#[tokio::test]
async fn takeout_records_import_in_chunks_with_bad_records_and_late_points_reported() {
    let s = TestServer::start().await;
    let t0 = s.now() - 100_000_000;
    // The trip starts ten seconds into the file: those ten points are outside it.
    trip(&s, "history", t0 + 10_000).await;
    let n = 60_000;
    let file = records_json(t0, n);
    let (status, body) = import(&s, "history", "google-takeout", file.clone()).await;
    assert_eq!(status, 200, "{body}");
    let broken = n / 1_000;
    assert_eq!(body["imported"], n - broken - 10, "{body}");
    assert_eq!(body["skipped"], broken + 10, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors[0]["at"], "locations[999]", "{body}");
    assert!(
        errors[0]["reason"]
            .as_str()
            .expect("a reason")
            .starts_with("longitudeE7")
    );
    assert!(
        errors.iter().any(|e| e["at"] == "locations[0]"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("time: outside the trip"))),
        "{body}"
    );
    let stored = route(&s, "history").await;
    assert_eq!(stored.len() as i64, n - broken - 10);
    assert_eq!(stored[0].0, t0 + 10_000);
    assert!((stored[0].1 - 47.30001).abs() < 1e-9, "{:?}", stored[0]);
    // Again: nothing new.
    let (status, again) = import(&s, "history", "google-takeout", file).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(route(&s, "history").await.len(), stored.len());
    let (_, stats) = s.get("/v1/stats").await;
    assert!(stats["track_import_points"].as_u64().expect("counted") >= stored.len() as u64);
}

#[tokio::test]
async fn the_newer_timeline_export_and_geojson_import_and_a_file_of_another_format_stores_nothing()
{
    let s = TestServer::start().await;
    let t0 = 1_704_092_400_000i64; // 2024-01-01T08:00:00+01:00
    trip(&s, "paris", t0).await;
    let timeline = json!({
        "semanticSegments": [
            {"startTime": "2024-01-01T08:00:00.000+01:00", "endTime": "2024-01-01T09:00:00.000+01:00",
             "timelinePath": [
                {"point": "48.8566°, 2.3522°", "time": "2024-01-01T08:05:00.000+01:00"},
                {"point": "48.8570°, 2.3530°", "time": "2024-01-01T08:06:00.000+01:00"}]},
            {"startTime": "2024-01-01T09:00:00.000+01:00", "endTime": "2024-01-01T10:00:00.000+01:00",
             "visit": {"topCandidate": {"placeLocation": {"latLng": "48.8600°, 2.3400°"}}}}
        ],
        "rawSignals": [{"position": {"LatLng": "48.87°, 2.37°", "timestamp": "2024-01-01T11:00:00.000+01:00"}}]
    });
    let (status, body) = import(
        &s,
        "paris",
        "google-takeout",
        timeline.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 5, "{body}");
    let geojson = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[2.36, 48.88], [2.37, 48.89]]},
         "properties": {"coordTimes": ["2024-01-01T11:00:00Z", "2024-01-01T11:01:00Z"]}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.38, 48.9]}, "properties": {}}
    ]});
    let (status, body) = import(&s, "paris", "geojson", geojson.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 2, "{body}");
    assert_eq!(body["errors"][0]["at"], "features[1]", "{body}");
    let before = route(&s, "paris").await;
    assert_eq!(before.len(), 7);
    // Not its format: 400, the format named, nothing stored.
    for (format, body) in [
        ("gpx", geojson.to_string()),
        ("geojson", "<gpx></gpx>".to_string()),
        (
            "google-takeout",
            json!({"type": "FeatureCollection"}).to_string(),
        ),
    ] {
        let (status, problem) = import(&s, "paris", format, body.into_bytes()).await;
        assert_eq!(status, 400, "{format}: {problem}");
    }
    let (status, problem) = import(&s, "paris", "kml", Vec::new()).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("format"))
    );
    assert_eq!(route(&s, "paris").await, before);
    assert_eq!(import(&s, "nope", "gpx", Vec::new()).await.0, 404);
}

/// A running trip's window has no end, so an imported point's time is held to what a
/// position's is: not before 1970, and not further ahead of the server's clock than
/// `--max-clock-skew` (a point of the year 10000 was stored, and the route's GPX was a 500
/// from then on).
#[tokio::test]
async fn imported_points_far_in_the_future_or_before_1970_are_skipped_naming_their_time() {
    let s = TestServer::start().await;
    trip(&s, "far", 0).await;
    let geojson = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
         "properties": {"timestamp": "2024-01-01T11:00:00Z"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.36, 48.86]},
         "properties": {"timestamp": "9999-12-31T23:00:00Z"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.37, 48.87]},
         "properties": {"timestamp": "2999-01-01T00:00:00Z"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.38, 48.88]},
         "properties": {"timestamp": "1969-12-31T00:00:00Z"}}
    ]});
    let (status, body) = import(&s, "far", "geojson", geojson.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 1, "{body}");
    assert_eq!(body["skipped"], 3, "{body}");
    for (i, at) in ["features[1]", "features[2]", "features[3]"]
        .iter()
        .enumerate()
    {
        assert_eq!(body["errors"][i]["at"], *at, "{body}");
        let reason = body["errors"][i]["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("time:"), "{body}");
    }
    assert_eq!(route(&s, "far").await.len(), 1);
    let (status, gpx) = s.get("/v1/trips/far/route?viewer=ann&format=gpx").await;
    assert_eq!(status, 200, "{gpx}");
}

#[tokio::test]
async fn only_the_trips_traveller_or_a_key_imports_into_it() {
    let s = crate::trackers::server().await;
    let t0 = s.now() - 1_000_000;
    let (status, _) = crate::trackers::as_key(
        &s,
        s.client
            .put(s.url("/v1/trips/mine"))
            .json(&json!({"traveller": "ann", "title": "Mine", "started_at": t0})),
    )
    .await;
    assert_eq!(status, 201);
    let body = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.38, 48.9]},
         "properties": {"time": t0 + 1_000}}]})
    .to_string();
    let url = s.url("/v1/trips/mine/import?format=geojson");
    let as_token = |who: &str| {
        s.client
            .post(&url)
            .bearer_auth(crate::trackers::traveller_token(who))
            .body(body.clone())
    };
    assert_eq!(
        s.send(as_token("bob")).await.0,
        404,
        "another traveller's trip"
    );
    let (status, answer) = s.send(as_token("ann")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["imported"], 1);
}

/// A simplified route is read whole, so the points it keeps are bounded as a page's are:
/// a route of 100,001 points asked for at `simplify_m=0` is a 400 naming `simplify_m`
/// (its GPX was built whole in memory, some 370 bytes a point), and at a tolerance that
/// keeps fewer it is read.
#[tokio::test]
async fn a_simplified_route_keeps_at_most_a_pages_points() {
    let s = TestServer::start().await;
    let t0 = 1_704_092_400_000i64;
    trip(&s, "long", t0).await;
    let n = 100_001;
    let features: Vec<Value> = (0..n)
        .map(|i| {
            // A zigzag every point, so that no tolerance of a metre drops any.
            let lat = 48.0 + (i % 2) as f64 * 0.001;
            let lon = 2.0 + i as f64 * 0.000_01;
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                   "properties": {"timestamp": t0 + 1_000 * i as i64}})
        })
        .collect();
    let body = json!({"type": "FeatureCollection", "features": features});
    let (status, answer) = import(&s, "long", "geojson", body.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["imported"], n, "{answer}");
    for format in ["geojson", "gpx"] {
        let (status, problem) = s
            .get(&format!(
                "/v1/trips/long/route?viewer=ann&simplify_m=0&format={format}"
            ))
            .await;
        assert_eq!(status, 400, "{format}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("simplify_m")),
            "{problem}"
        );
    }
    let (status, feature) = s
        .get("/v1/trips/long/route?viewer=ann&simplify_m=200")
        .await;
    assert_eq!(status, 200, "{feature}");
    let kept: usize = feature["geometry"]["coordinates"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|part| part.as_array().map_or(0, Vec::len))
        .sum();
    assert!((2..=100_000).contains(&kept), "{kept}");
}

/// One feature is read into memory whole, so it is bounded (a million values): a track
/// written as one `LineString` of 350,000 positions with their times is skipped by its
/// position, asking for the track split into features, and the features after it are
/// imported; nothing of it is stored.
#[tokio::test]
async fn a_feature_too_large_to_hold_is_skipped_and_the_rest_imported() {
    let s = TestServer::start().await;
    let t0 = 1_704_092_400_000i64;
    trip(&s, "huge", t0).await;
    let n = 350_000;
    let mut body = String::with_capacity(n * 48);
    body.push_str(r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("[2.{i:06},48.5]"));
    }
    body.push_str(r#"]},"properties":{"coordTimes":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&(t0 + i as i64 * 1_000).to_string());
    }
    body.push_str("]}}");
    // Alone, a file that is one Feature: skipped the same way, nothing stored.
    let (status, answer) = import(&s, "huge", "geojson", body.clone().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["imported"].as_u64(), answer["skipped"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["at"], "features[0]", "{answer}");
    let body = format!(
        r#"{{"type":"FeatureCollection","features":[{body},{{"type":"Feature","geometry":{{"type":"Point","coordinates":[2.4,48.9]}},"properties":{{"timestamp":"2024-01-01T11:00:00Z"}}}}]}}"#
    );
    let (status, answer) = import(&s, "huge", "geojson", body.into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["imported"], 1, "{answer}");
    assert_eq!(answer["skipped"], 1, "{answer}");
    assert_eq!(answer["errors"][0]["at"], "features[0]", "{answer}");
    let reason = answer["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("split the track"), "{answer}");
    assert_eq!(route(&s, "huge").await.len(), 1);
}
