//! Privacy holes a caller with an ordinary key could use, each as it was found: a fence id's
//! old events replayed to its new owner, fence ids found by their answers, roaming fences
//! put around a traveller the caller cannot see (whose cost located it), a trail showing
//! where a traveller went while it was private, and event ids counting other callers'
//! events.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{SseStream, TestServer};

const ALICE_KEY: &str = "alice-app-key-0123456789";
const MALLORY_KEY: &str = "mallory-key-0123456789";
const QUIET: Duration = Duration::from_millis(400);

/// A server with two ordinary keys (no admin scope): a back end and an attacker.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(
            &keys,
            format!("{ALICE_KEY} read,write\n{MALLORY_KEY} read,write\n"),
        )
        .expect("keys");
        c.keys = Some(keys);
    })
    .await
}

async fn as_key(s: &TestServer, key: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
    s.send(request.bearer_auth(key)).await
}

async fn put(s: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    as_key(s, key, s.client.put(s.url(path)).json(&body)).await
}

async fn get(s: &TestServer, key: &str, path: &str) -> (u16, Value) {
    as_key(s, key, s.client.get(s.url(path))).await
}

/// Moves `id` to `(lat, lon)` a second after anything before.
async fn move_to(s: &TestServer, id: &str, lat: f64, lon: f64) {
    s.clock.advance(1_000);
    let (status, _) = put(
        s,
        ALICE_KEY,
        &format!("/v1/travellers/{id}/position"),
        json!({"lat": lat, "lon": lon, "ts": s.now()}),
    )
    .await;
    assert_eq!(status, 200);
}

async fn share(s: &TestServer, id: &str, sharing: Value) {
    let (status, _) = put(
        s,
        ALICE_KEY,
        &format!("/v1/travellers/{id}/sharing"),
        sharing,
    )
    .await;
    assert_eq!(status, 200);
}

fn circle(viewer: &str) -> Value {
    json!({"area": {"type": "Circle", "center": [24.94, 60.17], "radius_m": 300}, "viewer": viewer})
}

fn open_stream(s: &TestServer, key: &str, path: &str) -> reqwest::RequestBuilder {
    s.client.get(s.url(path)).bearer_auth(key)
}

#[tokio::test]
async fn a_fence_id_made_again_by_another_caller_never_gets_the_old_fences_events() {
    let s = server().await;
    share(
        &s,
        "alice",
        json!({"visibility": "friends", "viewers": ["mum"]}),
    )
    .await;
    let (status, _) = put(&s, ALICE_KEY, "/v1/fences/home", circle("mum")).await;
    assert_eq!(status, 201);
    // Alice walks in and out of her mum's fence: events with her exact positions.
    move_to(&s, "alice", 60.17, 24.94).await;
    move_to(&s, "alice", 60.30, 24.94).await;
    let (_, listed) = get(&s, ALICE_KEY, "/v1/fences/home/inside").await;
    assert!(listed["last_event_id"].is_string());
    let (status, _) = as_key(&s, ALICE_KEY, s.client.delete(s.url("/v1/fences/home"))).await;
    assert_eq!(status, 204);
    // Mallory makes `home`: a fence of her own (201 whether or not anyone else has one).
    let (status, _) = put(&s, MALLORY_KEY, "/v1/fences/home", circle("mallory")).await;
    assert_eq!(status, 201);
    let epoch = listed["last_event_id"]
        .as_str()
        .and_then(|id| id.split('-').next())
        .expect("an epoch")
        .to_string();
    let mut stream = SseStream::open(open_stream(
        &s,
        MALLORY_KEY,
        &format!("/v1/fences/home/events?after={epoch}-0"),
    ))
    .await
    .expect("her stream opens");
    let got = stream.drain(QUIET).await;
    assert!(
        got.iter().all(|e| e.data["traveller"] != "alice"),
        "mallory was handed alice's events: {got:?}"
    );
    // Alice's back end makes `home` again: its earlier life's id gets a reset.
    let (status, _) = put(&s, ALICE_KEY, "/v1/fences/home", circle("mum")).await;
    assert_eq!(status, 201);
    let old = listed["last_event_id"].as_str().expect("an id");
    let mut stream = SseStream::open(
        open_stream(&s, ALICE_KEY, "/v1/fences/home/events").header("last-event-id", old),
    )
    .await
    .expect("opens");
    let first = stream.next(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(first.event, "reset", "{first:?}");
}

#[tokio::test]
async fn no_answer_tells_a_caller_whether_another_has_a_fence_of_that_id() {
    let s = server().await;
    let (status, _) = put(&s, ALICE_KEY, "/v1/fences/home", circle("mum")).await;
    assert_eq!(status, 201);
    // Each answer mallory gets for `home` is the one she gets for an id nobody has.
    for (taken, free) in [("home", "nobodys")] {
        for path in ["", "/inside"] {
            let a = get(&s, MALLORY_KEY, &format!("/v1/fences/{taken}{path}")).await;
            let b = get(&s, MALLORY_KEY, &format!("/v1/fences/{free}{path}")).await;
            assert_eq!(a.0, b.0, "{path}");
            assert_eq!(
                a.1["detail"].as_str().map(|d| d.replace(taken, "X")),
                b.1["detail"].as_str().map(|d| d.replace(free, "X")),
                "{path}"
            );
        }
        let a = SseStream::open(open_stream(
            &s,
            MALLORY_KEY,
            &format!("/v1/fences/{taken}/events"),
        ))
        .await
        .err()
        .map(|e| e.0);
        let b = SseStream::open(open_stream(
            &s,
            MALLORY_KEY,
            &format!("/v1/fences/{free}/events"),
        ))
        .await
        .err()
        .map(|e| e.0);
        assert_eq!((a, b), (Some(404), Some(404)));
        let (a, _) = put(&s, MALLORY_KEY, &format!("/v1/fences/{taken}"), circle("m")).await;
        let (b, _) = put(&s, MALLORY_KEY, &format!("/v1/fences/{free}"), circle("m")).await;
        assert_eq!((a, b), (201, 201));
    }
    let (_, alices) = get(&s, ALICE_KEY, "/v1/fences/home").await;
    assert_eq!(alices["viewer"], "mum", "alice's fence is untouched");
}

#[tokio::test]
async fn a_roaming_fence_goes_only_around_a_traveller_its_viewer_may_see() {
    let s = server().await;
    move_to(&s, "victim", 60.17, 24.94).await;
    move_to(&s, "mallory", 60.17, 24.95).await;
    let roaming =
        |around: &str| json!({"roaming": {"around": around, "radius_m": 200}, "viewer": "mallory"});
    // Around a private traveller, or one that does not exist: the same 404.
    let (hidden_status, hidden) = put(&s, MALLORY_KEY, "/v1/fences/r", roaming("victim")).await;
    let (missing_status, missing) = put(&s, MALLORY_KEY, "/v1/fences/r", roaming("ghost")).await;
    assert_eq!((hidden_status, missing_status), (404, 404));
    assert_eq!(
        hidden["detail"].as_str().map(|d| d.replace("victim", "X")),
        missing["detail"].as_str().map(|d| d.replace("ghost", "X")),
    );
    let (_, stats) = get(&s, ALICE_KEY, "/v1/stats").await;
    assert_eq!(stats["fences"], 0, "nothing was stored");
    // Around a traveller it may see: stored. When that traveller goes private, the fence
    // stops following it (dormant), and starts again when it may see it again.
    share(&s, "victim", json!({"visibility": "public", "viewers": []})).await;
    let (status, _) = put(&s, MALLORY_KEY, "/v1/fences/r", roaming("victim")).await;
    assert_eq!(status, 201);
    share(
        &s,
        "victim",
        json!({"visibility": "private", "viewers": []}),
    )
    .await;
    let dormant = async || {
        // The judging thread takes the change; the stats follow.
        for _ in 0..50 {
            let (_, stats) = get(&s, ALICE_KEY, "/v1/stats").await;
            if stats["judging_backlog"] == 0 {
                return stats["dormant_fences"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("judging did not catch up");
    };
    assert_eq!(dormant().await, 1);
    move_to(&s, "victim", 60.18, 24.94).await;
    assert_eq!(dormant().await, 1, "its moves do not wake it");
    share(
        &s,
        "victim",
        json!({"visibility": "friends", "viewers": ["mallory"]}),
    )
    .await;
    assert_eq!(dormant().await, 0);
}

#[tokio::test]
async fn a_trail_shows_a_new_viewer_nothing_from_before_it_was_allowed() {
    let s = server().await;
    share(
        &s,
        "alice",
        json!({"visibility": "friends", "viewers": ["mum"]}),
    )
    .await;
    move_to(&s, "alice", 60.10, 24.90).await;
    // Private: three moves nobody else may see.
    share(&s, "alice", json!({"visibility": "private", "viewers": []})).await;
    for lat in [60.20, 60.21, 60.22] {
        move_to(&s, "alice", lat, 24.90).await;
    }
    // Shared again, with mum and with a stranger: then one more move.
    share(
        &s,
        "alice",
        json!({"visibility": "friends", "viewers": ["mum", "stranger"]}),
    )
    .await;
    move_to(&s, "alice", 60.30, 24.90).await;
    let lats = |body: &Value| -> Vec<f64> {
        body["trail"]
            .as_array()
            .map(|r| r.iter().filter_map(|p| p["lat"].as_f64()).collect())
            .unwrap_or_default()
    };
    for viewer in ["mum", "stranger"] {
        let (status, trail) = get(
            &s,
            ALICE_KEY,
            &format!("/v1/travellers/alice/trail?viewer={viewer}"),
        )
        .await;
        assert_eq!(status, 200, "{trail}");
        assert_eq!(lats(&trail), [60.30], "{viewer} sees only what came after");
    }
    let (_, own) = get(&s, ALICE_KEY, "/v1/travellers/alice/trail?viewer=alice").await;
    assert_eq!(
        lats(&own),
        [60.10, 60.20, 60.21, 60.22, 60.30],
        "alice sees her own"
    );
}

#[tokio::test]
async fn event_ids_count_only_the_callers_own_events() {
    let s = server().await;
    share(&s, "alice", json!({"visibility": "public", "viewers": []})).await;
    move_to(&s, "alice", 60.30, 24.94).await;
    let (status, _) = put(&s, MALLORY_KEY, "/v1/fences/watch", circle("mallory")).await;
    assert_eq!(status, 201);
    let (_, before) = get(&s, MALLORY_KEY, "/v1/fences/watch/inside").await;
    // Alice's back end has a busy fence: many events that are none of mallory's business.
    let (status, _) = put(&s, ALICE_KEY, "/v1/fences/busy", json!({"area": {"type": "Circle", "center": [24.94, 60.30], "radius_m": 300}, "viewer": "alice"})).await;
    assert_eq!(status, 201);
    for i in 0..10 {
        let lat = if i % 2 == 0 { 60.50 } else { 60.30 };
        move_to(&s, "alice", lat, 24.94).await;
    }
    let (_, alices) = get(&s, ALICE_KEY, "/v1/fences/busy/inside").await;
    let (_, after) = get(&s, MALLORY_KEY, "/v1/fences/watch/inside").await;
    assert_eq!(
        before["last_event_id"], after["last_event_id"],
        "mallory's ids did not move with alice's events ({})",
        alices["last_event_id"]
    );
}
