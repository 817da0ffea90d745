//! Travellers over HTTP: late and out-of-order batches, sharing on every read path, trails,
//! expiry with a controlled clock, the heatmap.

use serde_json::{Value, json};

use crate::common::TestServer;

async fn share(s: &TestServer, id: &str, visibility: &str, viewers: &[&str]) {
    let (status, _) = s
        .put_json(
            &format!("/v1/travellers/{id}/sharing"),
            &json!({"visibility": visibility, "viewers": viewers}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_newest_ts_wins_whatever_the_arrival_order() {
    let s = TestServer::start().await;
    let t0 = s.now() - 60_000;
    let updates: Vec<Value> = [
        (3, 60.3),
        (1, 60.1),
        (5, 60.5),
        (2, 60.2),
        (5, 60.9),
        (4, 60.4),
    ]
    .iter()
    .map(|(k, lat)| json!({"id": "anna", "lat": lat, "lon": 24.9, "ts": t0 + k * 1000}))
    .collect();
    let (status, body) = s.post_positions(&updates).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"accepted": 2, "stale": 4, "rejected": [], "rejected_count": 0}),
        "only ts 3 and 5 moved her"
    );
    let (status, anna) = s.get("/v1/travellers/anna?viewer=anna").await;
    assert_eq!(status, 200);
    assert_eq!(
        (anna["lat"].as_f64(), anna["ts"].as_i64()),
        (Some(60.5), Some(t0 + 5000)),
        "the same (id, ts) twice is stale"
    );
    let (_, trail) = s.get("/v1/travellers/anna/trail?viewer=anna").await;
    let ts: Vec<i64> = trail["trail"]
        .as_array()
        .expect("trail")
        .iter()
        .map(|p| p["ts"].as_i64().expect("ts"))
        .collect();
    assert_eq!(
        ts,
        (1..=5).map(|k| t0 + k * 1000).collect::<Vec<_>>(),
        "oldest first, each ts once"
    );
    let (_, recent) = s
        .get(&format!(
            "/v1/travellers/anna/trail?viewer=anna&since={}",
            t0 + 4000
        ))
        .await;
    assert_eq!(recent["trail"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_single_update_reports_whether_it_applied() {
    let s = TestServer::start().await;
    let now = s.now();
    let put = |ts: i64| json!({"lat": 48.85, "lon": 2.35, "ts": ts, "trip_id": "paris-2027", "accuracy_m": 8.5});
    assert_eq!(
        s.put_json("/v1/travellers/ben/position", &put(now)).await,
        (200, json!({"applied": true}))
    );
    assert_eq!(
        s.put_json("/v1/travellers/ben/position", &put(now - 1))
            .await,
        (200, json!({"applied": false}))
    );
    let (_, ben) = s.get("/v1/travellers/ben?viewer=ben").await;
    assert_eq!(
        ben,
        json!({"id": "ben", "lat": 48.85, "lon": 2.35, "ts": now, "trip_id": "paris-2027", "accuracy_m": 8.5})
    );
}

#[tokio::test]
async fn a_bad_line_rejects_only_itself() {
    let s = TestServer::start().await;
    let now = s.now();
    let body = format!(
        "{}\n{{\"id\":\"b\",\"lat\":95,\"lon\":1,\"ts\":{now}}}\n{{broken\n[{{\"id\":\"c\"}}]\n{}\n",
        json!({"id": "a", "lat": 1, "lon": 1, "ts": now}),
        json!({"id": "d", "lat": 1, "lon": 1, "ts": now, "colour": "red"}),
    );
    let (status, out) = s
        .send(s.client.post(s.url("/v1/positions")).body(body))
        .await;
    assert_eq!(status, 200);
    assert_eq!(out["accepted"], 1);
    let indexes: Vec<u64> = out["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, [1, 2, 3, 4]);
    assert!(
        out["rejected"][0]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("lat")
    );
    assert_eq!(
        s.get("/v1/travellers/b?viewer=b").await.0,
        404,
        "the bad line changed nothing"
    );
    // A JSON array works the same way.
    let array =
        json!([{"id": "e", "lat": 2, "lon": 2, "ts": now}, {"id": "f", "lat": 2, "lon": 2}]);
    let (status, out) = s
        .send(s.client.post(s.url("/v1/positions")).json(&array))
        .await;
    assert_eq!(
        (
            status,
            out["accepted"].as_u64(),
            out["rejected"][0]["index"].as_u64()
        ),
        (200, Some(1), Some(1))
    );
    assert!(
        out["rejected"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("ts")
    );
}

#[tokio::test]
async fn sharing_is_honoured_by_every_read_path() {
    let s = TestServer::start().await;
    let now = s.now();
    let lines: Vec<Value> = ["priv", "fam", "pub"]
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"id": id, "lat": 60.17 + i as f64 * 0.001, "lon": 24.94, "ts": now}))
        .collect();
    s.post_positions(&lines).await;
    share(&s, "fam", "friends", &["mum"]).await;
    share(&s, "pub", "public", &[]).await;

    let nearby =
        |viewer: &str| format!("/v1/travellers/nearby?lat=60.17&lon=24.94&radius_m=5000{viewer}");
    let cases: [(&str, &[&str]); 5] = [
        ("", &["pub"]),
        ("&viewer=stranger", &["pub"]),
        ("&viewer=mum", &["fam", "pub"]),
        ("&viewer=priv", &["priv", "pub"]),
        ("&viewer=fam", &["fam", "pub"]),
    ];
    for (viewer, expected) in cases {
        let (status, body) = s.get(&nearby(viewer)).await;
        assert_eq!(status, 200);
        assert_eq!(TestServer::ids(&body), expected, "viewer {viewer:?}");
    }
    for (id, viewer, visible) in [
        ("priv", "mum", false),
        ("priv", "priv", true),
        ("fam", "mum", true),
        ("fam", "dad", false),
    ] {
        let want = if visible { 200 } else { 404 };
        assert_eq!(
            s.get(&format!("/v1/travellers/{id}?viewer={viewer}"))
                .await
                .0,
            want,
            "{id} to {viewer}"
        );
        assert_eq!(
            s.get(&format!("/v1/travellers/{id}/trail?viewer={viewer}"))
                .await
                .0,
            want,
            "trail of {id} to {viewer}"
        );
    }
    // An invisible traveller looks exactly like a missing one.
    let (_, hidden) = s.get("/v1/travellers/priv?viewer=mum").await;
    let (_, missing) = s.get("/v1/travellers/nobody?viewer=mum").await;
    assert_eq!(hidden["status"], missing["status"]);
    assert_eq!(hidden["type"], missing["type"]);
    // Only public travellers count in the heatmap.
    let (status, heat) = s
        .get("/v1/heatmap?bbox=24,60,26,61&resolution=5&layer=travellers")
        .await;
    assert_eq!(status, 200);
    let total: u64 = heat["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(total, 1);
}

#[tokio::test]
async fn a_traveller_expires_after_the_ttl_from_every_answer() {
    let s = TestServer::start_with(|c| c.traveller_ttl = 60).await;
    let now = s.now();
    // One phone's clock runs 10 minutes ahead: its age counts from the receive time.
    let lines = [
        json!({"id": "old", "lat": 1, "lon": 1, "ts": now - 50_000}),
        json!({"id": "ahead", "lat": 1, "lon": 1.001, "ts": now + 600_000}),
    ];
    s.post_positions(&lines).await;
    share(&s, "old", "public", &[]).await;
    share(&s, "ahead", "public", &[]).await;
    let nearby = "/v1/travellers/nearby?lat=1&lon=1&radius_m=1000";
    assert_eq!(TestServer::ids(&s.get(nearby).await.1), ["old", "ahead"]);
    s.clock.advance(20_000); // old is 70 s old now, ahead 20 s
    assert_eq!(TestServer::ids(&s.get(nearby).await.1), ["ahead"]);
    assert_eq!(s.get("/v1/travellers/old").await.0, 404);
    assert_eq!(s.get("/v1/travellers/old/trail").await.0, 404);
    s.clock.advance(41_000);
    assert!(TestServer::ids(&s.get(nearby).await.1).is_empty());
    let (_, heat) = s
        .get("/v1/heatmap?bbox=0,0,2,2&resolution=3&layer=travellers")
        .await;
    assert_eq!(heat["cells"], json!([]));
    // The sweeper frees them; their sharing settings stay.
    s.state.engine.sweep_travellers();
    assert_eq!(s.state.engine.traveller_count(), 2);
}

#[tokio::test]
async fn delete_forgets_position_trail_and_sharing() {
    let s = TestServer::start().await;
    let now = s.now();
    s.post_positions(&[json!({"id": "gone", "lat": 1, "lon": 1, "ts": now})])
        .await;
    share(&s, "gone", "public", &[]).await;
    assert_eq!(s.delete("/v1/travellers/gone").await.0, 204);
    assert_eq!(s.get("/v1/travellers/gone?viewer=gone").await.0, 404);
    assert_eq!(s.delete("/v1/travellers/gone").await.0, 404);
    s.post_positions(&[json!({"id": "gone", "lat": 1, "lon": 1, "ts": now + 1})])
        .await;
    assert_eq!(
        s.get("/v1/travellers/gone").await.0,
        404,
        "sharing was forgotten: private again"
    );
}

#[tokio::test]
async fn bad_traveller_requests_are_problems_that_change_nothing() {
    let s = TestServer::start().await;
    let now = s.now();
    let cases = [
        ("/v1/travellers/nearby?lat=1", "lon"),
        ("/v1/travellers/nearby?lat=1&lon=1&radius_m=-5", "radius_m"),
        ("/v1/travellers/nearby?lat=1&lon=1&viewer=a%2Fb", "viewer"),
        ("/v1/travellers/x/trail?since=yesterday", "since"),
        ("/v1/heatmap?bbox=0,0,1,1&resolution=16", "resolution"),
        ("/v1/heatmap?bbox=0,0,1,1", "resolution"),
        ("/v1/heatmap?bbox=0,0,1,1&resolution=3&layer=cats", "layer"),
    ];
    for (path, field) in cases {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            body["detail"].as_str().expect("detail").starts_with(field),
            "{path}: {body}"
        );
    }
    let bad_bodies = [
        json!({"lat": 1, "lon": 1}),
        json!({"lat": 1, "lon": 1, "ts": -1}),
        json!({"lat": 1, "lon": 1, "ts": 1.5}),
        json!({"lat": 1, "lon": 1, "ts": now, "accuracy_m": -3}),
    ];
    for body in bad_bodies {
        assert_eq!(
            s.put_json("/v1/travellers/z/position", &body).await.0,
            400,
            "{body}"
        );
    }
    let (status, body) = s
        .put_json(
            "/v1/travellers/z/sharing",
            &json!({"visibility": "everyone"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .starts_with("visibility"),
        "{body}"
    );
    let (status, _) = s
        .put_json(
            "/v1/travellers/z/sharing",
            &json!({"visibility": "friends", "viewers": ["ok", ""]}),
        )
        .await;
    assert_eq!(status, 400);
    let text = s
        .client
        .post(s.url("/v1/positions"))
        .header("content-type", "text/csv")
        .body("x");
    assert_eq!(s.send(text).await.0, 415);
    assert_eq!(s.state.engine.traveller_count(), 0, "nothing was stored");
}

#[tokio::test]
async fn the_poi_heatmap_counts_pois_per_h3_cell() {
    let s = TestServer::start().await;
    s.put_poi("a", 60.1699, 24.9384, "cafe", None).await;
    s.put_poi("b", 60.1699, 24.9385, "cafe", None).await;
    s.put_poi("c", 48.85, 2.35, "cafe", None).await;
    let (status, body) = s.get("/v1/heatmap?bbox=20,55,30,65&resolution=7").await;
    assert_eq!(status, 200);
    let cells = body["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0]["count"], 2);
    assert_eq!(cells[0]["h3"].as_str().map(str::len), Some(15));
}

#[tokio::test]
async fn heatmap_cells_come_with_their_outlines_when_asked() {
    let s = TestServer::start().await;
    s.put_poi("a", 60.1699, 24.9384, "cafe", None).await;
    s.put_poi("fiji", -16.5, 179.99, "cafe", None).await;
    let (status, body) = s
        .get("/v1/heatmap?bbox=170,-20,-170,65&resolution=2&outline=true")
        .await;
    assert_eq!(status, 200, "{body}");
    let cells = body["cells"].as_array().expect("cells");
    assert_eq!(
        cells.len(),
        1,
        "only Fiji is in the box across the antimeridian"
    );
    let ring = cells[0]["outline"].as_array().expect("an outline");
    assert!(ring.len() >= 7, "{ring:?}");
    assert_eq!(ring.first(), ring.last(), "a closed ring");
    for vertex in ring {
        let (lon, lat) = (
            vertex[0].as_f64().expect("lon"),
            vertex[1].as_f64().expect("lat"),
        );
        assert!(
            (-180.0..=180.0).contains(&lon) && (-25.0..=-10.0).contains(&lat),
            "{vertex}"
        );
    }
    let (_, plain) = s.get("/v1/heatmap?bbox=20,55,30,65&resolution=7").await;
    assert!(plain["cells"][0].get("outline").is_none(), "{plain}");
    let (status, body) = s
        .get("/v1/heatmap?bbox=20,55,30,65&resolution=7&outline=yes")
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .starts_with("outline"),
        "{body}"
    );
}

#[tokio::test]
async fn categories_list_what_the_pois_hold_now_most_common_first() {
    let s = TestServer::start().await;
    s.put_poi("a", 60.17, 24.94, "cafe", None).await;
    s.put_poi("b", 60.17, 24.95, "museum", None).await;
    s.put_poi("c", 60.18, 24.94, "cafe", None).await;
    s.put_poi("d", 60.18, 24.95, "bar", None).await;
    assert_eq!(s.delete("/v1/pois/d").await.0, 204);
    let (status, body) = s.get("/v1/categories").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"categories": [{"count": 2, "name": "cafe"}, {"count": 1, "name": "museum"}]}),
        "bar has no POI left"
    );
    let (_, one) = s.get("/v1/categories?limit=1").await;
    assert_eq!(one["categories"].as_array().map(Vec::len), Some(1));
    assert_eq!(s.get("/v1/categories?limit=0").await.0, 400);
}
