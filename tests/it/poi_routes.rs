//! Create, read, replace and delete POIs over HTTP.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn a_poi_is_created_read_replaced_and_deleted() {
    let s = TestServer::start().await;
    let poi = json!({"lat": 60.1699, "lon": 24.9384, "name": "Café Ekberg", "category": "cafe",
                     "tags": {"cuisine": "coffee_shop"}, "rating": 4.5});
    let (status, body) = s.put_json("/v1/pois/cafe-1", &poi).await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"id": "cafe-1", "lat": 60.1699, "lon": 24.9384, "name": "Café Ekberg",
                            "category": "cafe", "tags": {"cuisine": "coffee_shop"}, "rating": 4.5})
    );
    assert_eq!(s.get("/v1/pois/cafe-1").await, (200, body));

    let replacement = json!({"lat": 60.2, "lon": 24.9, "name": "Ekberg", "category": "bakery"});
    let (status, body) = s.put_json("/v1/pois/cafe-1", &replacement).await;
    assert_eq!(status, 200, "replacing answers 200");
    assert_eq!(body["tags"], json!({}), "tags default to empty");
    assert!(body.get("rating").is_none(), "no rating, no field");
    assert_eq!(s.get("/v1/pois/cafe-1").await.1["category"], "bakery");

    assert_eq!(s.delete("/v1/pois/cafe-1").await.0, 204);
    assert_eq!(s.get("/v1/pois/cafe-1").await.0, 404);
    assert_eq!(s.delete("/v1/pois/cafe-1").await.0, 404);
}

#[tokio::test]
async fn ids_with_reserved_characters_travel_percent_encoded() {
    let s = TestServer::start().await;
    s.put_poi("osm:node 42 ä", 1.0, 2.0, "cafe", None).await;
    let (status, body) = s.get("/v1/pois/osm:node%2042%20%C3%A4").await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], "osm:node 42 ä");
}

#[tokio::test]
async fn an_id_in_the_body_must_match_the_path() {
    let s = TestServer::start().await;
    let same = json!({"id": "a", "lat": 1.0, "lon": 2.0, "name": "A", "category": "cafe"});
    assert_eq!(s.put_json("/v1/pois/a", &same).await.0, 201);
    let other = json!({"id": "b", "lat": 1.0, "lon": 2.0, "name": "A", "category": "cafe"});
    let (status, body) = s.put_json("/v1/pois/a", &other).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().expect("detail").starts_with("id"));
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/healthz").await.0, 200);
    assert_eq!(s.get("/readyz").await.0, 200);
}

#[tokio::test]
async fn the_bundled_sample_is_loaded_unless_asked_not_to() {
    let s = TestServer::start_with(|c| c.no_sample = false).await;
    let (status, body) = s
        .get("/v1/pois/nearby?lat=60.17&lon=24.94&limit=1&category=city")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["name"], "Helsinki");
    assert_eq!(body["results"][0]["category"], "city");
    assert!(
        s.state.engine.poi_count() > 34_006,
        "the cities and the Helsinki extract"
    );
}

#[tokio::test]
async fn fields_choose_what_each_poi_of_a_page_carries() {
    let s = TestServer::start().await;
    s.put_poi("near", 60.17, 24.94, "cafe", Some(4.0)).await;
    s.put_poi("far", 60.18, 24.94, "museum", None).await;
    let (status, body) = s
        .get("/v1/pois/nearby?lat=60.17&lon=24.94&radius_m=5000&fields=distance_m,id")
        .await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], json!({"id": "near", "distance_m": 0.0}));
    assert_eq!(results[1]["id"], "far");
    assert_eq!(
        results[1].as_object().expect("an object").len(),
        2,
        "{body}"
    );
    let (status, body) = s
        .get("/v1/pois/within?bbox=24.9,60.1,25.0,60.2&fields=id,lat,lon")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["results"],
        json!([{"id": "far", "lat": 60.18, "lon": 24.94}, {"id": "near", "lat": 60.17, "lon": 24.94}])
    );
    for (path, field) in [
        (
            "/v1/pois/nearby?lat=60.17&lon=24.94&fields=id,color",
            "color",
        ),
        (
            "/v1/pois/within?bbox=24.9,60.1,25.0,60.2&fields=distance_m",
            "distance_m",
        ),
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}");
        let detail = body["detail"].as_str().unwrap_or("");
        assert!(
            detail.starts_with("fields: unknown field") && detail.contains(field),
            "{detail}"
        );
    }
}
