//! The small holes at the edge, each as found: a stream limit an open server did not keep,
//! routes that let unknown query parameters through, a 405 echoing a whole method, an
//! HTTP/2 client closed without an answer, and a report from the far future pinning a
//! traveller; and the limits on what one caller may set up.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{SseStream, TestServer};

#[tokio::test]
async fn an_open_server_holds_one_address_to_the_stream_limit() {
    let s = TestServer::start_with(|c| c.max_streams_per_key = 3).await;
    let (status, _) = s
        .put_json(
            "/v1/fences/f",
            &json!({"area": {"type": "Circle", "center": [24.94, 60.17], "radius_m": 100}, "viewer": "v"}),
        )
        .await;
    assert_eq!(status, 201);
    let open = || SseStream::open(s.client.get(s.url("/v1/fences/f/events")));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(open().await.expect("within the limit"));
    }
    let (status, problem) = open().await.err().expect("one more is refused");
    assert_eq!(status, 429, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("this address already holds 3")),
        "{problem}"
    );
    // Live maps count as streams, and have a limit of their own.
    drop(held);
    let map = |n: usize| {
        SseStream::open(s.client.get(s.url(&format!(
            "/v1/travellers/watch?bbox=24.{n},60.1,24.{n}5,60.2"
        ))))
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut maps = Vec::new();
    for n in 0..3 {
        maps.push(map(n).await.expect("a map"));
    }
    assert_eq!(map(9).await.err().map(|e| e.0), Some(429));
}

#[tokio::test]
async fn a_live_map_limit_per_owner_holds_below_the_stream_limit() {
    let s = TestServer::start_with(|c| {
        c.max_streams_per_key = 10;
        c.max_maps_per_owner = 2;
    })
    .await;
    let map = || SseStream::open(s.client.get(s.url("/v1/travellers/watch?bbox=24,60,25,61")));
    let _a = map().await.expect("one");
    let _b = map().await.expect("two");
    let (status, problem) = map().await.err().expect("a third map is refused");
    assert_eq!(status, 429);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("2 live maps")),
        "{problem}"
    );
}

#[tokio::test]
async fn every_route_refuses_a_query_parameter_it_does_not_know() {
    let s = TestServer::start().await;
    let area = json!({"type": "Circle", "center": [24.94, 60.17], "radius_m": 100});
    let cases = [
        s.client
            .put(s.url("/v1/fences/f?colour=red"))
            .json(&json!({"area": area, "viewer": "v"})),
        s.client
            .post(s.url("/v1/pois/within?colour=red"))
            .json(&json!({"area": area})),
        s.client
            .post(s.url("/v1/travellers/within?colour=red"))
            .json(&json!({"area": area})),
        s.client
            .put(s.url("/v1/travellers/t/position?colour=red"))
            .json(&json!({"lat": 1, "lon": 1, "ts": s.now()})),
        s.client
            .put(s.url("/v1/pois/p?colour=red"))
            .json(&json!({"lat": 1, "lon": 1, "name": "p", "category": "cafe"})),
    ];
    for request in cases {
        let (status, problem) = s.send(request).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["detail"], "colour: unknown parameter");
    }
    let (_, stats) = s.get("/v1/stats").await;
    assert_eq!(
        (&stats["fences"], &stats["pois"], &stats["travellers"]),
        (&json!(0), &json!(0), &json!(0)),
        "nothing was changed"
    );
}

#[tokio::test]
async fn a_405_repeats_only_the_start_of_a_long_method() {
    let s = TestServer::start().await;
    let method = "X".repeat(8 * 1024);
    let mut stream = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let request =
        format!("{method} /v1/pois/nearby HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.len() < 1024,
        "the answer does not echo the method: {} bytes",
        answer.len()
    );
    assert!(
        answer.contains("XXXXXXXXXXXXXXXX… is not supported"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_http2_client_with_prior_knowledge_is_answered() {
    let s = TestServer::start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("a client");
    let response = client
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("an answer over HTTP/2");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    // Admission holds over HTTP/2 as over HTTP/1.1: errors are problems.
    let response = client
        .get(s.url("/v1/pois/nearby?lat=91&lon=0"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("problem json");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("lat"))
    );
}

#[tokio::test]
async fn a_report_from_the_far_future_is_refused_and_pins_nothing() {
    let s = TestServer::start().await;
    let (status, problem) = s
        .put_json(
            "/v1/travellers/t/position",
            &json!({"lat": 1, "lon": 1, "ts": 1_000_000_000_000_000i64}),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ahead of the server's clock")),
        "{problem}"
    );
    // In a batch, only that line is refused; a report a day ahead is still taken.
    let (status, counts) = s
        .post_positions(&[
            json!({"id": "t", "lat": 1, "lon": 1, "ts": 1_000_000_000_000_000i64}),
            json!({"id": "t", "lat": 2, "lon": 2, "ts": s.now() + 86_399_000}),
        ])
        .await;
    assert_eq!(status, 200);
    assert_eq!(counts["accepted"], 1, "{counts}");
    assert_eq!(counts["rejected"][0]["index"], 0);
    // And the traveller still moves with its next real report... once its clock passes
    // the day-ahead one: the newest ts wins, as ever. The point is none pins it for good.
    let (_, t) = s.get("/v1/travellers/t?viewer=t").await;
    assert_eq!(t["lat"], 2.0);
}

#[tokio::test]
async fn what_one_caller_may_set_up_is_bounded() {
    let s = TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(
            &keys,
            "small-key-0123456789 read,write\nadmin-key-0123456789 read,write,admin\n",
        )
        .expect("keys");
        c.keys = Some(keys);
        c.max_fences_per_owner = 2;
        c.max_vertices_per_owner = 10;
        c.max_roaming_per_traveller = 1;
    })
    .await;
    let put = |key: &'static str, id: &str, body: Value| {
        s.client
            .put(s.url(&format!("/v1/fences/{id}")))
            .bearer_auth(key)
            .json(&body)
    };
    let square = |n: f64| json!({"area": {"type": "Polygon", "coordinates": [[[n, 0], [n + 1.0, 0], [n + 1.0, 1], [n, 1], [n, 0]]]}, "viewer": "v"});
    assert_eq!(
        s.send(put("small-key-0123456789", "a", square(0.0)))
            .await
            .0,
        201
    );
    assert_eq!(
        s.send(put("small-key-0123456789", "b", square(2.0)))
            .await
            .0,
        201
    );
    let (status, problem) = s.send(put("small-key-0123456789", "c", square(4.0))).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--max-fences-per-owner"))
    );
    // A bigger area would pass the owner's vertices.
    let big = json!({"area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0.5, 1.5], [0, 1], [0, 0]]]}, "viewer": "v"});
    let (status, problem) = s.send(put("small-key-0123456789", "a", big)).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--max-vertices-per-owner"))
    );
    // An admin key is not held to the per-owner quotas.
    for id in ["a", "b", "c"] {
        assert_eq!(
            s.send(put("admin-key-0123456789", id, square(0.0))).await.0,
            201
        );
    }
    // Roaming: a radius over the server's limit is a bad request; a second fence around
    // the same traveller is over the quota.
    let t = |s: &TestServer| {
        s.client
            .put(s.url("/v1/travellers/v/position"))
            .bearer_auth("small-key-0123456789")
            .json(&json!({"lat": 0.5, "lon": 0.5, "ts": s.now()}))
    };
    assert_eq!(s.send(t(&s)).await.0, 200);
    let roaming = |r: f64| json!({"roaming": {"around": "v", "radius_m": r}, "viewer": "v"});
    let (_, _) = s
        .send(
            s.client
                .delete(s.url("/v1/fences/b"))
                .bearer_auth("small-key-0123456789"),
        )
        .await;
    let (status, problem) = s
        .send(put("small-key-0123456789", "r", roaming(5_001.0)))
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("roaming.radius_m"))
    );
    assert_eq!(
        s.send(put("small-key-0123456789", "r", roaming(500.0)))
            .await
            .0,
        201
    );
    let (_, _) = s
        .send(
            s.client
                .delete(s.url("/v1/fences/a"))
                .bearer_auth("small-key-0123456789"),
        )
        .await;
    let (status, problem) = s
        .send(put("small-key-0123456789", "r2", roaming(500.0)))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--max-roaming-per-traveller"))
    );
}
