//! One caller making the server slow for everyone, as found: imports trickling a byte at a
//! time held every blocking thread (fence writes, batches, snapshots and expiry stalled);
//! whole-world live maps and swarms of fences and streams taken by one key. How fast the
//! server stays under each attack is measured by `scripts/attacks.sh`; these tests hold
//! the bounds that keep it so.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{SseStream, TestServer};

const KEYS: [&str; 4] = [
    "first-key-0123456789",
    "second-key-0123456789",
    "third-key-0123456789",
    "admin-key-0123456789",
];

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        let lines: Vec<String> = KEYS
            .iter()
            .map(|k| {
                let scopes = if k.starts_with("admin") {
                    "read,write,admin"
                } else {
                    "read,write"
                };
                format!("{k} {scopes}")
            })
            .collect();
        std::fs::write(&keys, lines.join("\n")).expect("keys");
        c.keys = Some(keys);
        c.max_imports = 2;
    })
    .await
}

/// Starts an import whose body sends a header line and then nothing: it holds its place
/// until `feed` is dropped. Returns the feed and the pending answer.
fn trickling_import(
    s: &TestServer,
    key: &str,
) -> (
    tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    tokio::task::JoinHandle<u16>,
) {
    let (feed, rx) = tokio::sync::mpsc::channel(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(rx));
    let request = s
        .client
        .post(s.url("/v1/pois/import?format=csv"))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(body);
    let answer = tokio::spawn(async move {
        request
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    });
    (feed, answer)
}

fn tokio_stream_of(
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[tokio::test]
async fn trickling_imports_hold_their_own_places_and_nothing_else() {
    let s = server().await;
    let mut feeds = Vec::new();
    let mut answers = Vec::new();
    for key in &KEYS[..2] {
        let (feed, answer) = trickling_import(&s, key);
        feed.send(Ok(b"id,lat,lon,name,category\n".to_vec()))
            .await
            .expect("the import reads");
        feeds.push(feed);
        answers.push(answer);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third key's import: the server is at --max-imports.
    let (status, problem) = s
        .send(
            s.client
                .post(s.url("/v1/pois/import?format=csv"))
                .bearer_auth(KEYS[2])
                .body("id,lat,lon,name,category\nx,1,1,x,cafe\n"),
        )
        .await;
    assert_eq!(status, 429, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--max-imports"))
    );
    // A second import of a key already importing.
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/v1/pois/import?format=csv"))
                .bearer_auth(KEYS[0])
                .body("id,lat,lon,name,category\n"),
        )
        .await;
    assert_eq!(status, 429);
    // Everything else goes on: a fence, a large batch, a snapshot, a heatmap.
    let started = Instant::now();
    let (status, _) = s
        .send(
            s.client
                .put(s.url("/v1/fences/f"))
                .bearer_auth(KEYS[2])
                .json(&json!({"area": {"type": "Circle", "center": [24.9, 60.1], "radius_m": 500}, "viewer": "v"})),
        )
        .await;
    assert_eq!(status, 201);
    let batch: String = (0..10_000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("t{i}"), "lat": 60.1, "lon": 24.9, "ts": s.now()})
            )
        })
        .collect();
    let (status, counts) = s
        .send(
            s.client
                .post(s.url("/v1/positions"))
                .bearer_auth(KEYS[2])
                .header("content-type", "application/x-ndjson")
                .body(batch),
        )
        .await;
    assert_eq!((status, &counts["accepted"]), (200, &json!(10_000)));
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/v1/admin/snapshot"))
                .bearer_auth(KEYS[3]),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .send(
            s.client
                .get(s.url("/v1/heatmap?bbox=24,60,25,61&resolution=5&layer=pois"))
                .bearer_auth(KEYS[2]),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "none of them waited for the imports"
    );
    // The trickling imports end when their bodies do.
    drop(feeds);
    for answer in answers {
        let status = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("answered")
            .expect("the task");
        assert_eq!(status, 200);
    }
    // Places are given back.
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/v1/pois/import?format=csv"))
                .bearer_auth(KEYS[2])
                .body("id,lat,lon,name,category\nx,1,1,x,cafe\n"),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn one_key_cannot_open_whole_world_live_maps_without_end() {
    let s = TestServer::start_with(|c| c.max_maps_per_owner = 4).await;
    let mut maps = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match SseStream::open(
            s.client
                .get(s.url("/v1/travellers/watch?bbox=-180,-90,180,90")),
        )
        .await
        {
            Ok(map) => maps.push(map),
            Err((429, _)) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((maps.len(), refused), (4, 16));
}
