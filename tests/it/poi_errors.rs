//! Every bad request gets the right status and a problem+json naming the field, and changes
//! nothing.

use serde_json::{Value, json};

use crate::common::TestServer;

/// Everything a client can observe of the POI set.
async fn observable_state(s: &TestServer) -> Value {
    s.get("/v1/pois/within?bbox=-180,-90,180,90&limit=1000")
        .await
        .1
}

fn assert_names(body: &Value, field: &str) {
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(field),
        "detail should name {field}: {detail}"
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let s = TestServer::start().await;
    s.put_poi("a", 1.0, 1.0, "cafe", None).await;
    let cases = [
        ("/v1/pois/nearby?lon=1", "lat"),
        ("/v1/pois/nearby?lat=91&lon=1", "lat"),
        ("/v1/pois/nearby?lat=NaN&lon=1", "lat"),
        ("/v1/pois/nearby?lat=1&lon=inf", "lon"),
        ("/v1/pois/nearby?lat=1&lon=-181", "lon"),
        ("/v1/pois/nearby?lat=x&lon=1", "lat"),
        ("/v1/pois/nearby?lat=1&lon=1&radius_m=-1", "radius_m"),
        ("/v1/pois/nearby?lat=1&lon=1&radius_m=20037510", "radius_m"),
        ("/v1/pois/nearby?lat=1&lon=1&radius_m=NaN", "radius_m"),
        ("/v1/pois/nearby?lat=1&lon=1&limit=0", "limit"),
        ("/v1/pois/nearby?lat=1&lon=1&limit=1001", "limit"),
        ("/v1/pois/nearby?lat=1&lon=1&limit=-3", "limit"),
        ("/v1/pois/nearby?lat=1&lon=1&lat=2", "lat"),
        ("/v1/pois/nearby?lat=1&lon=1&category=Cafe", "category"),
        ("/v1/pois/nearby?lat=1&lon=1&min_rating=inf", "min_rating"),
        ("/v1/pois/nearby?lat=1&lon=1&radius=5", "radius"),
        ("/v1/pois/nearby?lat=1&lon=1&cursor=AAAA", "cursor"),
        ("/v1/pois/within", "bbox"),
        ("/v1/pois/within?bbox=1,2,3", "bbox"),
        ("/v1/pois/within?bbox=0,10,1,5", "bbox"),
        ("/v1/pois/within?bbox=0,0,1,91", "bbox"),
        ("/v1/pois/within?bbox=0,0,1,1&limit=5000", "limit"),
        ("/v1/pois/import?format=xml", "format"),
        ("/v1/pois/import?format=osm", "format"),
        ("/v1/pois/import", "format"),
        ("/v1/pois/import?format=csv&mode=merge", "mode"),
        ("/v1/pois/import?format=csv&strict=maybe", "strict"),
    ];
    for (path, field) in cases {
        let request = if path.contains("import") {
            s.client.post(s.url(path))
        } else {
            s.client.get(s.url(path))
        };
        let (status, body) = s.send(request).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_names(&body, field);
    }
}

#[tokio::test]
async fn a_cursor_is_tamper_evident_and_bound_to_its_query() {
    let s = TestServer::start().await;
    for i in 0..3 {
        s.put_poi(
            &format!("p{i}"),
            1.0,
            1.0 + f64::from(i) * 0.001,
            "cafe",
            None,
        )
        .await;
    }
    let (_, body) = s.get("/v1/pois/nearby?lat=1&lon=1&limit=1").await;
    let cursor = body["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_string();
    let mut forged = cursor.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    let (status, body) = s
        .get(&format!(
            "/v1/pois/nearby?lat=1&lon=1&limit=1&cursor={forged}"
        ))
        .await;
    assert_eq!(status, 400);
    assert_names(&body, "cursor");
    let (status, _) = s
        .get(&format!(
            "/v1/pois/nearby?lat=1.5&lon=1&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, 400, "a cursor from another query is refused");
    let (status, body) = s
        .get(&format!(
            "/v1/pois/nearby?lat=1&lon=1&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(TestServer::ids(&body), ["p1"]);
}

#[tokio::test]
async fn bad_bodies_are_refused_and_change_nothing() {
    let s = TestServer::start_with(|c| c.max_body_bytes = 4096).await;
    s.put_poi("keep", 1.0, 1.0, "cafe", Some(2.0)).await;
    let before = observable_state(&s).await;

    let bodies = [
        (
            json!({"lat": 91, "lon": 1, "name": "x", "category": "cafe"}),
            "lat",
        ),
        (
            json!({"lat": 1, "lon": 1, "name": "x"}),
            "missing field `category`",
        ),
        (
            json!({"lat": "1", "lon": 1, "name": "x", "category": "cafe"}),
            "lat",
        ),
        (
            json!({"lat": 1, "lon": 1, "name": "x", "category": "cafe", "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"lat": 1, "lon": 1, "name": "x", "category": "Not A Word"}),
            "category",
        ),
        (
            json!({"lat": 1, "lon": 1, "name": "x", "category": "cafe", "rating": 11}),
            "rating",
        ),
        (
            json!({"lat": 1, "lon": 1, "name": "x", "category": "cafe", "tags": {"k": 1}}),
            "tags.k",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in bodies {
        let (status, problem) = s.put_json("/v1/pois/keep", &body).await;
        assert_eq!(status, 400, "{body}");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains(field), "{field} in {detail}");
    }
    let raw = [
        ("{\"lat\": 1,", "application/json", 400),
        ("{}", "text/plain", 415),
    ];
    for (body, content_type, want) in raw {
        let request = s
            .client
            .put(s.url("/v1/pois/keep"))
            .header("content-type", content_type)
            .body(body);
        assert_eq!(s.send(request).await.0, want, "{body:?} as {content_type}");
    }
    let huge = json!({"lat": 1, "lon": 1, "name": "x".repeat(5000), "category": "cafe"});
    assert_eq!(s.put_json("/v1/pois/keep", &huge).await.0, 413);
    let long_id = "x".repeat(129);
    let poi = json!({"lat": 1, "lon": 1, "name": "x", "category": "cafe"});
    let (status, body) = s.put_json(&format!("/v1/pois/{long_id}"), &poi).await;
    assert_eq!(status, 400);
    assert_names(&body, "id");
    assert_eq!(s.put_json("/v1/pois/bad%0Aid", &poi).await.0, 400);

    assert_eq!(
        observable_state(&s).await,
        before,
        "no bad request changed anything"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/v1/nothing").await.0, 404);
    assert_eq!(s.send(s.client.patch(s.url("/v1/pois/a"))).await.0, 405);
    assert_eq!(s.send(s.client.post(s.url("/v1/pois/nearby"))).await.0, 405);
}
