//! Live maps over HTTP: a snapshot of who the viewer may see in the box, then `entered`,
//! `moved` and `left` as they happen; refused when the box holds too many.

use std::time::Duration;

use serde_json::json;

use crate::common::{SseStream, TestServer};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

async fn at(s: &TestServer, id: &str, lat: f64, lon: f64) {
    s.clock.advance(1_000);
    let body = json!({"lat": lat, "lon": lon, "ts": s.now()});
    let (status, _) = s
        .put_json(&format!("/v1/travellers/{id}/position"), &body)
        .await;
    assert_eq!(status, 200);
}

async fn public(s: &TestServer, id: &str) {
    s.put_json(
        &format!("/v1/travellers/{id}/sharing"),
        &json!({"visibility": "public"}),
    )
    .await;
}

#[tokio::test]
async fn a_map_starts_with_who_is_in_the_box_then_follows_them() {
    let s = TestServer::start().await;
    for id in ["a", "b", "c"] {
        public(&s, id).await;
    }
    s.put_json(
        "/v1/travellers/d/sharing",
        &json!({"visibility": "friends", "viewers": ["me"]}),
    )
    .await;
    at(&s, "a", 60.17, 24.94).await;
    at(&s, "b", 61.0, 24.94).await; // outside the box
    at(&s, "c", 60.16, 24.93).await;
    let path = "/v1/travellers/watch?bbox=24.9,60.1,25.0,60.2&viewer=me";
    let mut map = SseStream::open(s.client.get(s.url(path)))
        .await
        .expect("a stream");
    let first = map.drain(QUIET).await;
    let snapshot: Vec<(&str, &str)> = first
        .iter()
        .map(|e| (e.event.as_str(), e.data["id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(snapshot, [("snapshot", "a"), ("snapshot", "c")]);
    assert_eq!(
        first[0].data,
        json!({"id": "a", "lat": 60.17, "lon": 24.94, "ts": s.now() - 2_000})
    );

    at(&s, "b", 60.15, 24.95).await;
    let e = map.next(WAIT).await.expect("b comes in");
    assert_eq!(
        (e.event.as_str(), e.data["id"].as_str()),
        ("entered", Some("b"))
    );
    at(&s, "a", 60.171, 24.941).await;
    let e = map.next(WAIT).await.expect("a moves");
    assert_eq!(
        (e.event.as_str(), e.data["lat"].as_f64()),
        ("moved", Some(60.171))
    );
    at(&s, "c", 62.0, 24.94).await;
    let e = map.next(WAIT).await.expect("c leaves");
    assert_eq!(
        (e.event.as_str(), e.data["id"].as_str()),
        ("left", Some("c"))
    );
    // d shares with this viewer; a stranger does not show.
    at(&s, "d", 60.12, 24.99).await;
    at(&s, "stranger", 60.12, 24.99).await;
    let rest = map.drain(QUIET).await;
    let rest: Vec<(&str, &str)> = rest
        .iter()
        .map(|e| (e.event.as_str(), e.data["id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(rest, [("entered", "d")]);
    let ids: Vec<u64> = first
        .iter()
        .map(|e| {
            e.id.as_deref()
                .and_then(|i| i.parse().ok())
                .expect("numbered")
        })
        .collect();
    assert_eq!(ids, [1, 2], "events are numbered per stream");
    // Deleted travellers leave the map.
    s.delete("/v1/travellers/b").await;
    let e = map.next(WAIT).await.expect("b deleted");
    assert_eq!(
        (e.event.as_str(), e.data["id"].as_str()),
        ("left", Some("b"))
    );
}

#[tokio::test]
async fn a_box_holding_more_than_a_snapshot_may_list_is_refused() {
    let s = TestServer::start_with(|c| c.max_watch_snapshot = 2).await;
    for (i, lat) in [60.11, 60.12, 60.13].iter().enumerate() {
        let id = format!("t{i}");
        public(&s, &id).await;
        at(&s, &id, *lat, 24.95).await;
    }
    let path = "/v1/travellers/watch?bbox=24.9,60.1,25.0,60.2";
    let (status, problem) = SseStream::open(s.client.get(s.url(path)))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 400);
    assert_eq!(
        problem["detail"],
        "bbox: the box holds more than 2 travellers the viewer may see; ask for a smaller box"
    );
    let small = "/v1/travellers/watch?bbox=24.9,60.1,25.0,60.125";
    let mut map = SseStream::open(s.client.get(s.url(small)))
        .await
        .expect("two fit");
    assert_eq!(map.drain(QUIET).await.len(), 2);
}

#[tokio::test]
async fn a_map_is_sent_frames_with_each_travellers_newest_position_once() {
    let s = TestServer::start_with(|c| c.map_frame_ms = 1_000).await;
    public(&s, "runner").await;
    at(&s, "runner", 60.11, 24.95).await;
    let mut map = SseStream::open(
        s.client
            .get(s.url("/v1/travellers/watch?bbox=24.9,60.1,25.0,60.2")),
    )
    .await
    .expect("a stream");
    assert_eq!(map.next(WAIT).await.expect("snapshot").event, "snapshot");
    // Fifty moves within one frame's time: the map is told of the last, once.
    for step in 1..=50 {
        let body = json!({"lat": 60.11 + f64::from(step) * 0.001, "lon": 24.95, "ts": s.now() + i64::from(step)});
        let (status, _) = s.put_json("/v1/travellers/runner/position", &body).await;
        assert_eq!(status, 200);
    }
    let frame = map.drain(Duration::from_millis(1_500)).await;
    assert_eq!(frame.len(), 1, "{frame:?}");
    assert_eq!(frame[0].event, "moved");
    assert_eq!(frame[0].data["lat"], json!(60.16));
}
