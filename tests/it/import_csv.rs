//! `POST /v1/pois/import?format=csv`: lenient and strict, upsert and replace, limits.

use serde_json::json;

use crate::common::TestServer;

const GOOD_AND_BAD: &str = "id,lat,lon,name,category,rating,cuisine\n\
    c1,60.1,24.9,One,cafe,4.5,coffee\n\
    c2,95,24.9,Bad latitude,cafe,,\n\
    c3,60.2,24.8,Three,cafe,,\n\
    c4,60.2,,No longitude,cafe,,\n";

#[tokio::test]
async fn lenient_import_skips_bad_rows_and_lists_their_lines() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post_body("/v1/pois/import?format=csv", GOOD_AND_BAD)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["imported"], 2);
    assert_eq!(body["skipped"], 2);
    assert_eq!(body["errors"][0]["line"], 3);
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("lat")
    );
    assert_eq!(body["errors"][1]["line"], 5);
    let (_, c1) = s.get("/v1/pois/c1").await;
    assert_eq!(
        c1,
        json!({"id": "c1", "lat": 60.1, "lon": 24.9, "name": "One", "category": "cafe",
                          "tags": {"cuisine": "coffee"}, "rating": 4.5})
    );
}

#[tokio::test]
async fn strict_import_with_a_bad_row_imports_nothing() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post_body("/v1/pois/import?format=csv&strict=true", GOOD_AND_BAD)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().expect("detail").contains("line 3"),
        "{body}"
    );
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(2));
    assert_eq!(s.get("/v1/pois/c1").await.0, 404);
    assert_eq!(s.state.engine.poi_count(), 0);
}

#[tokio::test]
async fn replace_mode_swaps_the_whole_set() {
    let s = TestServer::start().await;
    s.put_poi("old", 1.0, 1.0, "cafe", None).await;
    let csv = "id,lat,lon,name,category\nnew1,1,1,N1,cafe\nnew2,2,2,N2,museum\n";
    let (status, body) = s
        .post_body("/v1/pois/import?format=csv&mode=replace", csv)
        .await;
    assert_eq!((status, body["imported"].as_u64()), (200, Some(2)));
    assert_eq!(s.get("/v1/pois/old").await.0, 404);
    assert_eq!(s.get("/v1/pois/new2").await.1["category"], "museum");
}

#[tokio::test]
async fn geonames_style_files_import_as_cities() {
    let s = TestServer::start().await;
    let csv = "geonameid,name,latitude,longitude,countrycode,population,timezone\n\
               658225,Helsinki,60.16952,24.93545,FI,558457,Europe/Helsinki\n";
    let (status, body) = s.post_body("/v1/pois/import?format=csv", csv).await;
    assert_eq!((status, body["imported"].as_u64()), (200, Some(1)));
    let (_, poi) = s.get("/v1/pois/658225").await;
    assert_eq!(poi["category"], "city");
    assert_eq!(poi["tags"]["timezone"], "Europe/Helsinki");
}

#[tokio::test]
async fn a_header_without_required_columns_is_a_400() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post_body("/v1/pois/import?format=csv", "id,name\n1,x\n")
        .await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().expect("detail").contains("`lat`"));
}

#[tokio::test]
async fn an_import_over_the_size_limit_is_a_413_and_imports_nothing() {
    let s = TestServer::start_with(|c| c.max_import_bytes = 1000).await;
    let mut csv = String::from("id,lat,lon,name,category\n");
    for i in 0..100 {
        csv.push_str(&format!("p{i},1,1,Name,cafe\n"));
    }
    assert_eq!(
        s.post_body("/v1/pois/import?format=csv", csv.clone())
            .await
            .0,
        413
    );
    // The same, streamed without a declared length.
    let chunks: Vec<Result<String, std::io::Error>> =
        csv.lines().map(|l| Ok(format!("{l}\n"))).collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    assert_eq!(
        s.post_body("/v1/pois/import?format=csv", stream).await.0,
        413
    );
    assert_eq!(s.state.engine.poi_count(), 0);
}

#[tokio::test]
async fn a_large_upsert_import_keeps_existing_pois() {
    let s = TestServer::start().await;
    s.put_poi("kept", 5.0, 5.0, "museum", None).await;
    let mut csv = String::from("id,lat,lon,name,category\n");
    for i in 0..5000 {
        csv.push_str(&format!(
            "p{i},{},{},Name {i},cafe\n",
            f64::from(i % 90),
            f64::from(i % 180)
        ));
    }
    let (status, body) = s.post_body("/v1/pois/import?format=csv", csv).await;
    assert_eq!((status, body["imported"].as_u64()), (200, Some(5000)));
    assert_eq!(s.state.engine.poi_count(), 5001);
    let (_, body) = s
        .get("/v1/pois/nearby?lat=5&lon=5&limit=1&category=museum")
        .await;
    assert_eq!(TestServer::ids(&body), ["kept"]);
}
