//! The follower's page `/t/{token}` in a real browser, with no key: the trip's figures, its
//! route drawn, its stay named by the café, the live position moving as a point is
//! reported, and a phone-sized layout with the map above the figures.

use serde_json::{Value, json};

use super::Browser;
use crate::common::TestServer;

#[tokio::test]
async fn a_follower_opens_the_link_and_sees_the_trip_move() {
    let Some(browser) = Browser::start("a_follower_opens_the_link_and_sees_the_trip_move").await
    else {
        return;
    };
    let s = TestServer::start().await;
    s.put_poi("cafe-regatta", 60.1832, 24.9090, "cafe", Some(4.6))
        .await;
    let t0 = s.now() - 7_200_000;
    let (status, _) = s
        .put_json(
            "/v1/trips/day",
            &json!({"traveller": "ann", "title": "A day in Helsinki", "started_at": t0}),
        )
        .await;
    assert_eq!(status, 201);
    // Half an hour at the café, then a walk north.
    let mut reports: Vec<Value> = (0..30)
        .map(|i| json!({"id": "ann", "lat": 60.1832, "lon": 24.9091, "ts": t0 + i * 60_000}))
        .collect();
    reports.extend((1..30).map(|i| {
        json!({"id": "ann", "lat": 60.1832 + i as f64 * 1e-3, "lon": 24.9091, "ts": t0 + 1_800_000 + i * 60_000})
    }));
    assert_eq!(s.post_positions(&reports).await.0, 200);
    let (status, link) = s
        .send(
            s.client
                .post(s.url("/v1/trips/day/links"))
                .json(&json!({"expires_at": s.now() + 3_600_000})),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let url = s.url(link["url"].as_str().expect("a url"));

    // A phone.
    browser
        .command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 390, "height": 844})),
        )
        .await;
    browser.open(&url).await;
    browser
        .wait_for(
            "the title",
            "return document.getElementById('title').textContent === 'A day in Helsinki' || null;",
            json!([]),
        )
        .await;
    let points = browser
        .wait_for(
            "the figures",
            "const t = document.getElementById('points').textContent; return t !== '–' ? t : null;",
            json!([]),
        )
        .await;
    assert_eq!(points, "59");
    let countries = browser
        .run(
            "return document.getElementById('countries').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(countries, "FI");
    browser
        .wait_for(
            "the route",
            "return window.tripPage.routeLines() >= 1 || null;",
            json!([]),
        )
        .await;
    let stay = browser
        .wait_for(
            "the stay",
            "const li = document.querySelector('#stays li'); return li ? li.textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        stay.as_str()
            .expect("text")
            .contains("name of cafe-regatta (cafe)"),
        "{stay}"
    );
    // The map sits above the figures on a phone.
    let stacked = browser
        .run(
            "const m = document.getElementById('map').getBoundingClientRect();
             const a = document.querySelector('aside').getBoundingClientRect();
             return a.top >= m.bottom - 1 && m.width > 300;",
            json!([]),
        )
        .await;
    assert_eq!(stacked, true);
    // A new point moves the live position.
    let ts = s.now() - 1_000;
    assert_eq!(
        s.post_positions(&[json!({"id": "ann", "lat": 60.25, "lon": 24.95, "ts": ts})])
            .await
            .0,
        200
    );
    browser
        .wait_for(
            "the live position",
            "const h = window.tripPage.here(); return h && Math.abs(h.lat - 60.25) < 1e-9 || null;",
            json!([]),
        )
        .await;
    browser.screenshot("trip-page").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
