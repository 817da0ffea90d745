//! Nearby and within queries over HTTP: ranking, filters, paging, the antimeridian.

use std::collections::HashSet;

use crate::common::TestServer;

#[tokio::test]
async fn nearby_ranks_by_distance_then_id_and_reports_distance() {
    let s = TestServer::start().await;
    s.put_poi("b", 60.0, 25.0, "cafe", None).await;
    s.put_poi("a", 60.0, 25.0, "cafe", None).await;
    s.put_poi("c", 60.01, 25.0, "cafe", None).await;
    s.put_poi("far", 61.0, 25.0, "cafe", None).await;
    let (status, body) = s.get("/v1/pois/nearby?lat=60&lon=25&radius_m=5000").await;
    assert_eq!(status, 200);
    assert_eq!(TestServer::ids(&body), ["a", "b", "c"]);
    assert_eq!(body["results"][0]["distance_m"], 0.0);
    let d = body["results"][2]["distance_m"].as_f64().expect("distance");
    assert!((d - 1111.95).abs() < 0.01, "{d}");
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    // Without a radius: the nearest anywhere.
    let (_, body) = s.get("/v1/pois/nearby?lat=61&lon=25&limit=2").await;
    assert_eq!(TestServer::ids(&body), ["far", "c"]);
}

#[tokio::test]
async fn category_filters_combine_as_any_of_and_min_rating_drops_unrated() {
    let s = TestServer::start().await;
    s.put_poi("cafe", 10.0, 10.0, "cafe", Some(4.0)).await;
    s.put_poi("museum", 10.0, 10.001, "museum", Some(3.0)).await;
    s.put_poi("hotel", 10.0, 10.002, "hotel", None).await;
    let (_, body) = s
        .get("/v1/pois/nearby?lat=10&lon=10&category=cafe&category=hotel")
        .await;
    assert_eq!(TestServer::ids(&body), ["cafe", "hotel"]);
    let (_, body) = s.get("/v1/pois/nearby?lat=10&lon=10&min_rating=3.5").await;
    assert_eq!(TestServer::ids(&body), ["cafe"]);
    let (_, body) = s
        .get("/v1/pois/nearby?lat=10&lon=10&category=nothing")
        .await;
    assert_eq!(TestServer::ids(&body), Vec::<String>::new());
}

#[tokio::test]
async fn cursors_page_through_every_poi_once() {
    let s = TestServer::start().await;
    for i in 0..53 {
        // Pairs at identical positions force ties across page boundaries.
        s.put_poi(
            &format!("p{i:02}"),
            45.0 + f64::from(i / 2) * 0.001,
            7.0,
            "cafe",
            None,
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut path = "/v1/pois/nearby?lat=45&lon=7&radius_m=100000&limit=7".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = s.get(&path).await;
        assert_eq!(status, 200);
        seen.extend(TestServer::ids(&body));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 53);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        53,
        "no POI twice"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "here distance order is id order");
}

#[tokio::test]
async fn within_crosses_the_antimeridian_and_pages_by_id() {
    let s = TestServer::start().await;
    s.put_poi("fiji", -17.7, 178.0, "city", None).await;
    s.put_poi("samoa", -13.8, -171.8, "city", None).await;
    s.put_poi("dateline", -15.0, 180.0, "city", None).await;
    s.put_poi("sydney", -33.9, 151.2, "city", None).await;
    let (status, body) = s.get("/v1/pois/within?bbox=170,-20,-170,-10&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(TestServer::ids(&body), ["dateline", "fiji"]);
    let cursor = body["next_cursor"].as_str().expect("a second page");
    let (_, body) = s
        .get(&format!(
            "/v1/pois/within?bbox=170,-20,-170,-10&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(TestServer::ids(&body), ["samoa"]);
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    assert!(body["results"][0].get("distance_m").is_none());
}
