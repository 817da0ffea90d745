//! Polygon and circle queries over HTTP: `POST /v1/pois/within` and
//! `POST /v1/travellers/within` answer exactly the points inside (the boundary included),
//! page with cursors, need only the read scope, and refuse every invalid area with the ring
//! and position named.

use serde_json::{Value, json};

use crate::common::TestServer;

/// A square with a square hole, around Helsinki's centre.
fn square_with_hole() -> Value {
    json!({"type": "Polygon", "coordinates": [
        [[24.90, 60.15], [25.00, 60.15], [25.00, 60.20], [24.90, 60.20], [24.90, 60.15]],
        [[24.94, 60.17], [24.96, 60.17], [24.96, 60.18], [24.94, 60.18], [24.94, 60.17]]
    ]})
}

async fn post(s: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    s.send(s.client.post(s.url(path)).json(body)).await
}

#[tokio::test]
async fn a_polygon_query_returns_exactly_the_pois_inside_in_id_order_page_by_page() {
    let s = TestServer::start().await;
    let places = [
        ("in-a", 60.16, 24.91, "cafe"),
        ("in-b", 60.19, 24.99, "museum"),
        ("in-hole", 60.175, 24.95, "cafe"),
        ("on-edge", 60.15, 24.95, "cafe"),
        ("on-hole-edge", 60.17, 24.95, "cafe"),
        ("out", 60.21, 24.95, "cafe"),
        ("in-c", 60.155, 24.92, "cafe"),
    ];
    for (id, lat, lon, category) in places {
        s.put_poi(id, lat, lon, category, Some(4.0)).await;
    }
    let mut body = json!({"area": square_with_hole(), "limit": 2});
    let mut ids = Vec::new();
    for page in 0.. {
        let (status, answer) = post(&s, "/v1/pois/within", &body).await;
        assert_eq!(status, 200, "{answer}");
        ids.extend(TestServer::ids(&answer));
        match answer["next_cursor"].as_str() {
            Some(cursor) => body["cursor"] = cursor.into(),
            None => break,
        }
        assert!(page < 10, "paging ends");
    }
    assert_eq!(ids, ["in-a", "in-b", "in-c", "on-edge", "on-hole-edge"]);
    let filtered = json!({"area": square_with_hole(), "category": ["museum"]});
    let (_, answer) = post(&s, "/v1/pois/within", &filtered).await;
    assert_eq!(TestServer::ids(&answer), ["in-b"]);
    assert!(
        answer["results"][0]["distance_m"].is_null(),
        "no distance in an area query"
    );
}

#[tokio::test]
async fn an_area_across_the_antimeridian_and_a_circle_find_the_right_pois() {
    let s = TestServer::start().await;
    s.put_poi("east", -17.0, 179.5, "viewpoint", None).await;
    s.put_poi("west", -17.0, -179.5, "viewpoint", None).await;
    s.put_poi("on-180", -17.0, 180.0, "viewpoint", None).await;
    s.put_poi("far", -17.0, 170.0, "viewpoint", None).await;
    let cut = json!({"area": {"type": "MultiPolygon", "coordinates": [
        [[[179.0, -18.0], [180.0, -18.0], [180.0, -16.0], [179.0, -16.0], [179.0, -18.0]]],
        [[[-180.0, -18.0], [-179.0, -18.0], [-179.0, -16.0], [-180.0, -16.0], [-180.0, -18.0]]]
    ]}});
    let (status, answer) = post(&s, "/v1/pois/within", &cut).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(TestServer::ids(&answer), ["east", "on-180", "west"]);
    let circle = json!({"area": {"type": "Circle", "center": [180.0, -17.0], "radius_m": 60_000}});
    let (_, answer) = post(&s, "/v1/pois/within", &circle).await;
    assert_eq!(TestServer::ids(&answer), ["east", "on-180", "west"]);
}

#[tokio::test]
async fn travellers_inside_an_area_are_those_the_viewer_may_see() {
    let s = TestServer::start().await;
    let now = s.now();
    let batch = [
        ("ann", 60.16, 24.91),
        ("bob", 60.19, 24.99),
        ("cyd", 60.175, 24.95),
        ("dan", 60.21, 24.95),
    ]
    .iter()
    .map(|(id, lat, lon)| json!({"id": id, "lat": lat, "lon": lon, "ts": now}))
    .collect::<Vec<_>>();
    let (status, _) = s.post_positions(&batch).await;
    assert_eq!(status, 200);
    for id in ["ann", "cyd", "dan"] {
        let sharing = json!({"visibility": "public"});
        s.put_json(&format!("/v1/travellers/{id}/sharing"), &sharing)
            .await;
    }
    let friends = json!({"visibility": "friends", "viewers": ["eve"]});
    s.put_json("/v1/travellers/bob/sharing", &friends).await;
    let query = |viewer: Value| json!({"area": square_with_hole(), "viewer": viewer});
    let (status, answer) = post(&s, "/v1/travellers/within", &query(Value::Null)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        TestServer::ids(&answer),
        ["ann"],
        "cyd is in the hole, dan outside"
    );
    assert_eq!(answer["next_cursor"], Value::Null);
    let (_, answer) = post(&s, "/v1/travellers/within", &query("eve".into())).await;
    assert_eq!(TestServer::ids(&answer), ["ann", "bob"]);
    let first = &answer["results"][0];
    assert_eq!(
        (first["lat"].as_f64(), first["ts"].as_i64()),
        (Some(60.16), Some(now))
    );
    // Pages of one.
    let (_, page) = post(
        &s,
        "/v1/travellers/within",
        &json!({"area": square_with_hole(), "viewer": "eve", "limit": 1}),
    )
    .await;
    assert_eq!(TestServer::ids(&page), ["ann"]);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, page) = post(
        &s,
        "/v1/travellers/within",
        &json!({"area": square_with_hole(), "viewer": "eve", "limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(TestServer::ids(&page), ["bob"]);
    // A cursor is bound to its viewer.
    let (status, problem) = post(
        &s,
        "/v1/travellers/within",
        &json!({"area": square_with_hole(), "viewer": "zed", "limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn every_invalid_area_is_a_400_naming_the_ring_and_position() {
    let s = TestServer::start_with(|c| c.max_area_vertices = 50).await;
    let cases = [
        (
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}),
            "area.coordinates[0]: the ring is not closed",
        ),
        (
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}),
            "area.coordinates[0]: the ring crosses or touches itself: the edge from position 0 to 1 meets the edge from position 2 to 3",
        ),
        (
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 95], [0, 0]]]}),
            "area.coordinates[0][2]: latitude must be a finite number in [-90, 90], got 95",
        ),
        (
            json!({"type": "MultiPolygon", "coordinates": [[[[170, 0], [-170, 0], [-170, 1], [170, 0]]]]}),
            "area.coordinates[0][0]: the ring spans 340° of longitude",
        ),
        (
            json!({"type": "Circle", "center": [0, 0], "radius_m": -5}),
            "area.radius_m: must be a number from 0 to",
        ),
        (
            json!({"type": "Point", "coordinates": [0, 0]}),
            "area.type: unknown variant `Point`, expected one of `Polygon`, `MultiPolygon`, `Circle`",
        ),
    ];
    for (area, detail) in cases {
        let (status, problem) = post(&s, "/v1/pois/within", &json!({"area": area})).await;
        assert_eq!(status, 400, "{problem}");
        let got = problem["detail"].as_str().expect("detail");
        assert!(
            got.starts_with(detail),
            "{got:?} should start with {detail:?}"
        );
    }
    let many: Vec<Value> = (0..=60)
        .map(|i| {
            let a = f64::from(i) / 60.0 * std::f64::consts::TAU;
            json!([a.cos(), a.sin()])
        })
        .collect();
    let (status, problem) = post(
        &s,
        "/v1/travellers/within",
        &json!({"area": {"type": "Polygon", "coordinates": [many]}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        problem["detail"],
        "area.coordinates: 61 positions; an area may have at most 50"
    );
    let (status, problem) = post(
        &s,
        "/v1/pois/within",
        &json!({"area": square_with_hole(), "limit": 0}),
    )
    .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (400, Some("limit: must be an integer from 1 to 1000"))
    );
}
