//! Privacy zones over HTTP: a traveller's zones are its own to put, read and delete (a
//! token for someone else gets 403 before anything is looked up); bad zones are refused
//! naming the field; and inside a zone nobody else sees the traveller, in lookups, nearby,
//! a follower's route or a share link's, while it still sees itself.

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::trackers::{as_key, server, traveller_token};

const HOME: (f64, f64) = (60.17, 24.94);

fn zone_body(radius_m: f64) -> Value {
    json!({"area": {"type": "Circle", "center": [HOME.1, HOME.0], "radius_m": radius_m}})
}

async fn as_traveller(s: &TestServer, who: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
    s.send(request.bearer_auth(traveller_token(who))).await
}

#[tokio::test]
async fn a_travellers_zones_are_its_own_and_bad_ones_change_nothing() {
    let s = server().await;
    let url = s.url("/v1/travellers/ann/privacy-zones/home");
    let (status, body) = as_traveller(&s, "ann", s.client.put(&url).json(&zone_body(150.0))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "home");
    assert_eq!(body["area"]["type"], "Circle");
    assert_eq!(body["area"]["radius_m"], 150.0);
    assert!(
        !body.to_string().contains("secret") && !body.to_string().contains("shroud"),
        "the shroud is never shown: {body}"
    );
    let (status, _) = as_traveller(&s, "ann", s.client.put(&url).json(&zone_body(200.0))).await;
    assert_eq!(status, 200, "replaced");
    // Someone else: 403 for every verb, whether or not the zone exists.
    for path in ["home", "nope"] {
        let other = s.url(&format!("/v1/travellers/ann/privacy-zones/{path}"));
        assert_eq!(as_traveller(&s, "bob", s.client.get(&other)).await.0, 403);
        assert_eq!(
            as_traveller(&s, "bob", s.client.put(&other).json(&zone_body(100.0)))
                .await
                .0,
            403
        );
        assert_eq!(
            as_traveller(&s, "bob", s.client.delete(&other)).await.0,
            403
        );
    }
    let list = s.url("/v1/travellers/ann/privacy-zones");
    assert_eq!(as_traveller(&s, "bob", s.client.get(&list)).await.0, 403);
    let (status, listed) = as_key(&s, s.client.get(&list)).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["results"][0]["area"]["radius_m"], 200.0);
    // Bad zones: the field named, nothing changed.
    let bad = [
        (zone_body(50_000.0), "area"),
        (
            json!({"area": {"type": "Circle", "center": [0, 100], "radius_m": 10}}),
            "area.center",
        ),
        (
            json!({"area": {"type": "Circle", "center": [0, 0], "radius_m": 10}, "x": 1}),
            "x",
        ),
        (json!({}), "area"),
    ];
    for (body, field) in bad {
        let (status, problem) = as_traveller(&s, "ann", s.client.put(&url).json(&body)).await;
        assert_eq!(status, 400, "{body} -> {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(field)),
            "{problem} names {field}"
        );
    }
    let (status, problem) = as_traveller(
        &s,
        "ann",
        s.client
            .put(s.url("/v1/travellers/ann/privacy-zones/a%2Fb"))
            .json(&zone_body(100.0)),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let (_, one) = as_traveller(&s, "ann", s.client.get(&url)).await;
    assert_eq!(one["area"]["radius_m"], 200.0, "unchanged by the bad puts");
    assert_eq!(as_traveller(&s, "ann", s.client.delete(&url)).await.0, 204);
    assert_eq!(as_traveller(&s, "ann", s.client.delete(&url)).await.0, 404);
    assert_eq!(as_traveller(&s, "ann", s.client.get(&url)).await.0, 404);
}

#[tokio::test]
async fn inside_its_zone_nobody_else_sees_a_traveller_nor_its_route_near_home() {
    let s = TestServer::start().await;
    let (status, _) = s
        .put_json(
            "/v1/travellers/ann/sharing",
            &json!({"visibility": "public", "viewers": []}),
        )
        .await;
    assert_eq!(status, 200);
    let t0 = s.now() - 600_000;
    let (status, body) = s
        .put_json(
            "/v1/trips/out",
            &json!({"traveller": "ann", "title": "Out", "started_at": t0}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Home for five minutes, then a walk north, a point every 10 s, 111 m apart.
    let reports: Vec<Value> = (0..60)
        .map(|i: i64| {
            let lat = HOME.0 + (i - 5).max(0) as f64 * 1e-3;
            json!({"id": "ann", "lat": lat, "lon": HOME.1, "ts": t0 + i * 10_000})
        })
        .collect();
    assert_eq!(s.post_positions(&reports).await.0, 200);
    // Back home now.
    let now = s.now();
    let (status, _) = s
        .post_positions(&[json!({"id": "ann", "lat": HOME.0, "lon": HOME.1, "ts": now})])
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        s.get("/v1/travellers/ann").await.0,
        200,
        "public, no zone yet"
    );
    let (status, body) = s
        .put_json("/v1/travellers/ann/privacy-zones/home", &zone_body(150.0))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(s.get("/v1/travellers/ann").await.0, 404);
    assert_eq!(s.get("/v1/travellers/ann?viewer=bob").await.0, 404);
    assert_eq!(s.get("/v1/travellers/ann?viewer=ann").await.0, 200);
    let near = format!(
        "/v1/travellers/nearby?lat={}&lon={}&radius_m=2000",
        HOME.0, HOME.1
    );
    let (_, body) = s.get(&near).await;
    assert_eq!(body["results"].as_array().map(Vec::len), Some(0), "{body}");
    let (_, body) = s.get(&format!("{near}&viewer=ann")).await;
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1), "{body}");
    // A share link's reader: the route and its figures start away from home.
    let (status, link) = s
        .send(
            s.client
                .post(s.url("/v1/trips/out/links"))
                .json(&json!({"expires_at": now + 3_600_000})),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().expect("a token");
    let near_home = |coords: &Value| {
        coords.as_array().into_iter().flatten().any(|p| {
            let lat = p[1].as_f64().expect("lat");
            (lat - HOME.0).abs() * 111_195.0 < 150.0 * 1.25
        })
    };
    let (status, route) = s.get(&format!("/v1/shared/{token}/route")).await;
    assert_eq!(status, 200, "{route}");
    let lines = route["geometry"]["coordinates"].as_array().expect("lines");
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|line| !near_home(line)), "{route}");
    let (_, trip) = s.get(&format!("/v1/shared/{token}")).await;
    let south = trip["bbox"][1].as_f64().expect("a box");
    assert!((south - HOME.0) * 111_195.0 > 150.0 * 1.25, "{trip}");
    // The traveller reads all of it.
    let (_, own) = s.get("/v1/trips/out/route?viewer=ann").await;
    let own_lines = own["geometry"]["coordinates"].as_array().expect("lines");
    assert!(own_lines.iter().any(near_home));
}
