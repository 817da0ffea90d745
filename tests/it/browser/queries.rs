//! The viewer's queries in a real browser: nearby, within a drawn polygon, the heatmap, and
//! errors shown with the problem's detail.

use serde_json::json;

use super::Browser;
use crate::common::TestServer;

#[tokio::test]
async fn a_nearby_query_made_in_the_page_lists_what_the_api_answers() {
    let Some(browser) =
        Browser::start("a_nearby_query_made_in_the_page_lists_what_the_api_answers").await
    else {
        return;
    };
    let s = TestServer::start().await;
    for i in 0..30 {
        let lat = 60.1699 + f64::from(i % 6) * 0.0007;
        let lon = 24.9384 + f64::from(i / 6) * 0.0011;
        let category = if i % 3 == 0 { "museum" } else { "cafe" };
        s.put_poi(&format!("poi-{i:02}"), lat, lon, category, None)
            .await;
    }
    let ready_ms = browser.open_viewer(&s).await;
    let bytes = browser
        .run(
            "return [...performance.getEntriesByType('navigation'),
                     ...performance.getEntriesByType('resource')]
               .filter(e => e.name.includes('/ui/'))
               .reduce((sum, e) => sum + e.encodedBodySize, 0);",
            json!([]),
        )
        .await;
    eprintln!(
        "the viewer was interactive {ready_ms} ms after navigation started, having loaded {bytes} bytes of its own files (as sent, gzipped)"
    );
    browser
        .run(
            "window.proxima.map.fire('click', {latlng: L.latLng(arguments[0], arguments[1])});",
            json!([60.1710, 24.9400]),
        )
        .await;
    let listed = browser.listed_ids().await;
    let (status, body) = s
        .get("/v1/pois/nearby?lat=60.171000&lon=24.940000&limit=20&radius_m=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed,
        json!(TestServer::ids(&body)),
        "the page lists what the API answers, in order"
    );
    browser.screenshot("nearby").await;
    // The categories offered are those the server holds, most common first; choosing one
    // filters the query as the API's `category` does.
    let offered = browser
        .wait_for(
            "the categories",
            "const o = [...document.querySelectorAll('#category option')].map(o => o.textContent);
             return o.length ? o : null;",
            json!([]),
        )
        .await;
    assert_eq!(offered, json!(["cafe (20)", "museum (10)"]));
    browser
        .run(
            "document.querySelector('#category option[value=museum]').selected = true;
             window.proxima.map.fire('click', {latlng: L.latLng(arguments[0], arguments[1])});",
            json!([60.1710, 24.9400]),
        )
        .await;
    let (_, museums) = s
        .get("/v1/pois/nearby?lat=60.171000&lon=24.940000&limit=20&radius_m=1000&category=museum")
        .await;
    let museums = TestServer::ids(&museums);
    assert_eq!(museums.len(), 10);
    browser
        .wait_for(
            "the museums only",
            "const ids = [...document.querySelectorAll('#results li')].map(li => li.dataset.id);
             return JSON.stringify(ids) === JSON.stringify(arguments[0]);",
            json!([museums]),
        )
        .await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_error_shows_the_problems_detail() {
    let Some(browser) = Browser::start("an_error_shows_the_problems_detail").await else {
        return;
    };
    let s = TestServer::start().await;
    browser.open_viewer(&s).await;
    browser
        .run(
            "document.getElementById('radius').value = '-5';
             window.proxima.map.fire('click', {latlng: L.latLng(60.17, 24.94)});",
            json!([]),
        )
        .await;
    let shown = browser
        .wait_for(
            "the error",
            "const e = document.getElementById('error'); return e.hidden ? null : e.textContent;",
            json!([]),
        )
        .await;
    assert!(
        shown
            .as_str()
            .unwrap_or("")
            .starts_with("radius_m: must be from 0"),
        "{shown}"
    );
    browser.screenshot("error").await;
}

#[tokio::test]
async fn a_polygon_drawn_in_the_page_lists_what_the_api_finds_within_it() {
    let Some(browser) =
        Browser::start("a_polygon_drawn_in_the_page_lists_what_the_api_finds_within_it").await
    else {
        return;
    };
    let s = TestServer::start().await;
    for i in 0..16 {
        let lat = 60.168 + f64::from(i % 4) * 0.001;
        let lon = 24.936 + f64::from(i / 4) * 0.002;
        s.put_poi(&format!("poi-{i:02}"), lat, lon, "cafe", None)
            .await;
    }
    browser.open_viewer(&s).await;
    let corners = [[24.9355, 60.1675], [24.9405, 60.1675], [24.9405, 60.1705]];
    browser
        .run(
            "document.getElementById('within').click();
             for (const [lon, lat] of arguments[0]) {
               window.proxima.map.fire('click', {latlng: L.latLng(lat, lon)});
             }
             document.getElementById('fence-finish').click();",
            json!([corners]),
        )
        .await;
    let listed = browser.listed_ids().await;
    let mut ring: Vec<[f64; 2]> = corners.to_vec();
    ring.push(corners[0]);
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/pois/within"))
                .json(&json!({"area": {"type": "Polygon", "coordinates": [ring]}, "limit": 100})),
        )
        .await;
    assert_eq!(status, 200);
    let api = TestServer::ids(&body);
    assert!(
        !api.is_empty() && api.len() < 16,
        "the triangle holds some: {api:?}"
    );
    assert_eq!(listed, json!(api));
    browser.screenshot("within").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}

#[tokio::test]
async fn the_heatmap_draws_the_cells_the_api_counts() {
    let Some(browser) = Browser::start("the_heatmap_draws_the_cells_the_api_counts").await else {
        return;
    };
    let s = TestServer::start().await;
    for i in 0..60 {
        let lat = 60.12 + f64::from(i % 10) * 0.01;
        let lon = 24.84 + f64::from(i / 10) * 0.04;
        s.put_poi(&format!("poi-{i:02}"), lat, lon, "cafe", None)
            .await;
    }
    browser.open_viewer(&s).await;
    browser
        .run(
            "const layer = document.getElementById('heat-layer');
             layer.value = 'pois';
             layer.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    let query = browser
        .wait_for(
            "the heatmap",
            "return document.getElementById('heat-legend').dataset.query || null;",
            json!([]),
        )
        .await;
    let drawn = browser
        .run(
            "return window.proxima.heatLayer.getLayers()
               .map(l => Number(l.getTooltip().getContent())).sort((a, b) => a - b);",
            json!([]),
        )
        .await;
    let (status, body) = s
        .get(&format!("/v1/heatmap?{}", query.as_str().expect("a query")))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut counts: Vec<u64> = body["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter_map(|c| c["count"].as_u64())
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts.iter().sum::<u64>(),
        60,
        "every POI is in view: {query}"
    );
    assert!(counts.len() > 1, "{counts:?}");
    assert_eq!(drawn, json!(counts), "one hexagon a cell, with its count");
    browser.screenshot("heatmap").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
