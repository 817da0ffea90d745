//! Fences over HTTP, with their events as Server-Sent Events: a traveller walking in and out
//! of a fence is told to its stream; a stream resumes after its last event, and a gap beyond
//! the retained window (or another run of the server) is a reset; a stalled subscriber is
//! reset while a healthy one on the same fence misses nothing; roaming fences follow their
//! traveller; expiry is an exit; and every bad request is refused with the field named.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{SseEvent, SseStream, TestServer};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// A circle of `radius_m` around a point near Helsinki's centre, seen by `viewer`.
fn circle_fence(viewer: Value, radius_m: f64) -> Value {
    json!({"area": {"type": "Circle", "center": [24.94, 60.17], "radius_m": radius_m}, "viewer": viewer})
}

/// Moves `id` to `(lat, lon)`, a second after anything before (so the report is newer).
async fn move_to(s: &TestServer, id: &str, lat: f64, lon: f64) {
    s.clock.advance(1_000);
    let body = json!({"lat": lat, "lon": lon, "ts": s.now()});
    let (status, answer) = s
        .put_json(&format!("/v1/travellers/{id}/position"), &body)
        .await;
    assert_eq!((status, &answer), (200, &json!({"applied": true})));
}

async fn share(s: &TestServer, id: &str, sharing: Value) {
    let (status, _) = s
        .put_json(&format!("/v1/travellers/{id}/sharing"), &sharing)
        .await;
    assert_eq!(status, 200);
}

async fn stream(s: &TestServer, path: &str, last_event_id: Option<&str>) -> SseStream {
    let mut request = s.client.get(s.url(path));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    SseStream::open(request)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e:?}"))
}

/// `(event, traveller, cause)` of each event.
fn summary(events: &[SseEvent]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.event.clone(),
                e.data["traveller"].as_str().unwrap_or("").to_string(),
                e.data["cause"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn triple(event: &str, traveller: &str, cause: &str) -> (String, String, String) {
    (event.into(), traveller.into(), cause.into())
}

#[tokio::test]
async fn a_traveller_walking_in_and_out_of_a_fence_is_told_to_its_stream() {
    let s = TestServer::start().await;
    let (status, fence) = s
        .put_json("/v1/fences/hotel", &circle_fence("mum".into(), 200.0))
        .await;
    assert_eq!(status, 201, "{fence}");
    assert_eq!(fence["viewer"], "mum");
    assert_eq!(fence["area"]["type"], "Circle");
    share(
        &s,
        "kid",
        json!({"visibility": "friends", "viewers": ["mum"]}),
    )
    .await;
    let (status, inside) = s.get("/v1/fences/hotel/inside").await;
    assert_eq!(status, 200);
    assert_eq!(inside["results"], json!([]));
    let last = inside["last_event_id"].as_str().expect("an id").to_string();
    let mut events = stream(&s, "/v1/fences/hotel/events", Some(&last)).await;

    move_to(&s, "kid", 60.18, 24.94).await; // about 1.1 km north: outside
    move_to(&s, "kid", 60.1705, 24.9405).await; // inside
    let enter = events.next(WAIT).await.expect("an enter event");
    assert_eq!(enter.event, "enter");
    assert_eq!(
        (
            enter.data["fence"].as_str(),
            enter.data["traveller"].as_str(),
            enter.data["cause"].as_str()
        ),
        (Some("hotel"), Some("kid"), Some("moved"))
    );
    assert_eq!(
        (enter.data["lat"].as_f64(), enter.data["ts"].as_i64()),
        (Some(60.1705), Some(s.now()))
    );
    let (_, inside) = s.get("/v1/fences/hotel/inside").await;
    assert_eq!(TestServer::ids(&inside), ["kid"]);
    assert_eq!(
        inside["last_event_id"].as_str(),
        enter.id.as_deref(),
        "the listing names the newest event"
    );

    move_to(&s, "kid", 60.19, 24.94).await; // out again
    let exit = events.next(WAIT).await.expect("an exit event");
    assert_eq!(
        summary(std::slice::from_ref(&exit)),
        [triple("exit", "kid", "moved")]
    );
    assert!(
        exit.id > enter.id,
        "ids increase: {:?} after {:?}",
        exit.id,
        enter.id
    );

    // A traveller the viewer may not see never shows up.
    move_to(&s, "stranger", 60.17, 24.94).await;
    assert_eq!(events.next(QUIET).await, None);
    let (_, inside) = s.get("/v1/fences/hotel/inside").await;
    assert_eq!(inside["results"], json!([]));

    // Back in, then hidden from the viewer: an exit with cause sharing, where it was seen.
    move_to(&s, "kid", 60.1701, 24.9401).await;
    share(&s, "kid", json!({"visibility": "private"})).await;
    let got = events.drain(QUIET).await;
    assert_eq!(
        summary(&got),
        [
            triple("enter", "kid", "moved"),
            triple("exit", "kid", "sharing")
        ]
    );
    assert_eq!(got[1].data["lat"], 60.1701);
}

#[tokio::test]
async fn a_stream_resumes_after_its_last_event_and_a_gap_is_a_reset() {
    let s = TestServer::start_with(|c| c.event_retention = 60).await;
    s.put_json("/v1/fences/square", &circle_fence(Value::Null, 500.0))
        .await;
    let mut first = stream(&s, "/v1/fences/square/events", None).await;
    move_to(&s, "a", 60.17, 24.94).await;
    let seen = first.next(WAIT).await.expect("the first event");
    drop(first);
    // Missed while disconnected.
    move_to(&s, "b", 60.17, 24.94).await;
    move_to(&s, "a", 60.2, 24.94).await;
    move_to(&s, "c", 60.17, 24.94).await;
    let mut again = stream(&s, "/v1/fences/square/events", seen.id.as_deref()).await;
    let got = again.drain(QUIET).await;
    assert_eq!(
        summary(&got),
        [
            triple("enter", "b", "moved"),
            triple("exit", "a", "moved"),
            triple("enter", "c", "moved")
        ],
        "every event after the last one seen, in order, none twice"
    );
    // The same with `?after=`.
    let after = format!(
        "/v1/fences/square/events?after={}",
        seen.id.as_deref().expect("id")
    );
    assert_eq!(
        summary(&stream(&s, &after, None).await.drain(QUIET).await),
        summary(&got)
    );

    // An id from another run of the server: a reset, and the stream ends.
    let id = seen.id.clone().expect("an id");
    let (epoch, seq) = id.split_once('-').expect("epoch-seq");
    let other = format!(
        "{:08x}-{seq}",
        u32::from_str_radix(epoch, 16).expect("hex") ^ 1
    );
    let mut reset = stream(&s, "/v1/fences/square/events", Some(&other)).await;
    let first = reset.next(WAIT).await.expect("a reset");
    assert_eq!((first.event.as_str(), first.id), ("reset", None));
    assert!(
        first.data["reason"]
            .as_str()
            .expect("why")
            .contains("list the fence again")
    );
    assert_eq!(reset.next(QUIET).await, None);
    assert!(reset.ended(), "a reset ends the stream");

    // Past the retained window: a reset too.
    s.clock.advance(61_000);
    move_to(&s, "b", 60.3, 24.94).await; // publishes (and trims) an exit
    let mut gap = stream(&s, "/v1/fences/square/events", Some(&id)).await;
    assert_eq!(gap.next(WAIT).await.expect("a reset").event, "reset");
}

#[tokio::test]
async fn a_stalled_subscriber_is_reset_while_a_healthy_one_misses_nothing() {
    // A queue that holds a whole batch's events: a reader that keeps up never fills it.
    let s = TestServer::start_with(|c| c.subscriber_buffer = 1_024).await;
    s.put_json("/v1/fences/busy", &circle_fence(Value::Null, 5_000.0))
        .await;
    // The stalled one never reads: its socket fills, then its queue, then it is dropped.
    let stalled = crate::stalled::open(s.addr, "/v1/fences/busy/events").await;
    let mut healthy = stream(&s, "/v1/fences/busy/events", None).await;
    let mut received = 0usize;
    let mut sent = 0usize;
    let travellers = 1_000;
    // Until the stalled one has filled the kernel's buffers and then its queue, and been
    // dropped (bounded: some megabytes of events).
    for round in 0..200 {
        // Everyone in, or everyone out: one event per traveller.
        let lat = if round % 2 == 0 { 60.17 } else { 61.0 };
        let batch: Vec<_> = (0..travellers)
            .map(
                |i| json!({"id": format!("t{i}"), "lat": lat, "lon": 24.94, "ts": s.now() + round}),
            )
            .collect();
        let (status, _) = s.post_positions(&batch).await;
        assert_eq!(status, 200);
        sent += travellers;
        received += healthy.drain(Duration::from_millis(50)).await.len();
        if s.get("/v1/stats").await.1["events"]["subscribers"] == 1 {
            break;
        }
    }
    assert_eq!(
        s.get("/v1/stats").await.1["events"]["subscribers"],
        1,
        "the stalled one was dropped"
    );
    received += healthy.drain(QUIET).await.len();
    assert_eq!(received, sent, "the healthy subscriber missed nothing");
    let tail = crate::stalled::read_all(stalled).await;
    assert!(
        tail.contains("event: reset"),
        "the stalled subscriber was reset: {} bytes, ending {:?}",
        tail.len(),
        &tail[tail.len().saturating_sub(400)..]
    );
    assert!(
        tail.matches("event: enter").count() + tail.matches("event: exit").count() < received,
        "and it got less than everything"
    );
}

#[tokio::test]
async fn a_roaming_fence_follows_its_traveller_among_those_who_share_with_it() {
    let s = TestServer::start().await;
    share(
        &s,
        "ann",
        json!({"visibility": "friends", "viewers": ["bob"]}),
    )
    .await;
    share(
        &s,
        "bob",
        json!({"visibility": "friends", "viewers": ["ann"]}),
    )
    .await;
    move_to(&s, "ann", 60.17, 24.94).await;
    let fence = json!({"roaming": {"around": "ann", "radius_m": 500}, "viewer": "ann"});
    let (status, stored) = s.put_json("/v1/fences/ann-friends", &fence).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        stored["roaming"],
        json!({"around": "ann", "radius_m": 500.0})
    );
    let mut events = stream(&s, "/v1/fences/ann-friends/events", None).await;
    move_to(&s, "bob", 60.18, 24.94).await; // 1.1 km away
    assert_eq!(events.next(QUIET).await, None);
    move_to(&s, "ann", 60.178, 24.94).await; // ann walks towards bob: 220 m
    let near = events.next(WAIT).await.expect("nearby");
    assert_eq!(
        summary(std::slice::from_ref(&near)),
        [triple("nearby", "bob", "moved")]
    );
    let d = near.data["distance_m"].as_f64().expect("a distance");
    assert!((200.0..240.0).contains(&d), "{d}");
    assert_eq!(
        near.data["around"],
        json!({"lat": 60.178, "lon": 24.94, "ts": s.now()}),
        "where ann was, as of the report that brought her near"
    );
    move_to(&s, "bob", 60.19, 24.94).await; // bob walks off
    assert_eq!(
        summary(&events.drain(QUIET).await),
        [triple("faraway", "bob", "moved")]
    );
    // ann herself is never in her own fence; a stranger is invisible to her.
    move_to(&s, "zed", 60.178, 24.9401).await;
    assert_eq!(events.next(QUIET).await, None);
}

#[tokio::test]
async fn an_expired_traveller_exits_its_fence_without_waiting_for_the_sweeper() {
    let s = TestServer::start_with(|c| c.traveller_ttl = 60).await;
    s.put_json("/v1/fences/square", &circle_fence(Value::Null, 500.0))
        .await;
    let mut events = stream(&s, "/v1/fences/square/events", None).await;
    move_to(&s, "a", 60.17, 24.94).await;
    assert_eq!(events.next(WAIT).await.expect("enter").event, "enter");
    s.clock.advance(61_000);
    // The expiry scan runs every second.
    let exit = events.next(WAIT).await.expect("an exit once expired");
    assert_eq!(summary(&[exit]), [triple("exit", "a", "expired")]);
}

#[tokio::test]
async fn a_stream_over_several_fences_and_the_end_of_a_deleted_fence() {
    let s = TestServer::start().await;
    s.put_json("/v1/fences/one", &circle_fence(Value::Null, 300.0))
        .await;
    let far = json!({"area": {"type": "Circle", "center": [25.5, 60.5], "radius_m": 300}, "viewer": null});
    s.put_json("/v1/fences/two", &far).await;
    let mut both = stream(&s, "/v1/events?fence=one&fence=two", None).await;
    // However far behind judging is, each move is judged where the traveller was then.
    move_to(&s, "a", 60.17, 24.94).await;
    move_to(&s, "a", 60.5, 25.5).await;
    let got = both.drain(QUIET).await;
    let fences: Vec<&str> = got
        .iter()
        .map(|e| e.data["fence"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        fences,
        ["one", "one", "two"],
        "leaving one is told before entering the next"
    );
    assert_eq!(summary(&got)[1], triple("exit", "a", "moved"));
    let (status, _) = s.delete("/v1/fences/two").await;
    assert_eq!(status, 204);
    let end = both.next(WAIT).await.expect("deleted");
    assert_eq!(
        (end.event.as_str(), end.data["fence"].as_str()),
        ("deleted", Some("two"))
    );
    assert_eq!(both.next(QUIET).await, None);
    assert!(both.ended(), "the stream ends with its fence");
    let (status, _) = s.get("/v1/fences/two").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn fences_list_page_by_page_and_replace_in_place() {
    let s = TestServer::start().await;
    for id in ["c", "a", "b"] {
        let (status, _) = s
            .put_json(
                &format!("/v1/fences/{id}"),
                &circle_fence("v".into(), 100.0),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, _) = s
        .put_json("/v1/fences/b", &circle_fence("w".into(), 100.0))
        .await;
    assert_eq!(status, 200, "replaced");
    let (_, page) = s.get("/v1/fences?limit=2").await;
    assert_eq!(TestServer::ids(&page), ["a", "b"]);
    assert_eq!(page["results"][1]["viewer"], "w");
    let cursor = page["next_cursor"].as_str().expect("more");
    let (_, page) = s.get(&format!("/v1/fences?limit=2&cursor={cursor}")).await;
    assert_eq!(TestServer::ids(&page), ["c"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, _) = s.delete("/v1/fences/a").await;
    assert_eq!(status, 204);
    let (status, problem) = s.delete("/v1/fences/a").await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (404, Some("id: no fence \"a\""))
    );
}

#[tokio::test]
async fn bad_fences_and_streams_are_refused_naming_the_field() {
    let s = TestServer::start_with(|c| c.max_fences_per_stream = 2).await;
    let cases = [
        (
            json!({"area": {"type": "Circle", "center": [0, 0], "radius_m": 10}}),
            "viewer: required",
        ),
        (json!({"viewer": "v"}), "area: required"),
        (
            json!({"viewer": "v", "area": {"type": "Circle", "center": [0, 0], "radius_m": 10}, "roaming": {"around": "x", "radius_m": 5}}),
            "area, roaming: a fence is one or the other",
        ),
        (
            json!({"viewer": "v", "roaming": {"around": "x", "radius_m": 60000}}),
            "roaming.radius_m: must be a number greater than 0 and at most 50000",
        ),
        (
            json!({"viewer": "v", "roaming": {"around": "a/b", "radius_m": 60}}),
            "roaming.around: id must be printable",
        ),
        (
            json!({"viewer": "v", "area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}}),
            "area.coordinates[0]: a ring needs at least 4 positions",
        ),
        (
            json!({"viewer": "v", "area": {"type": "Circle", "center": [0, 0], "radius_m": 10}, "colour": "red"}),
            "colour",
        ),
    ];
    for (body, detail) in cases {
        let (status, problem) = s.put_json("/v1/fences/f", &body).await;
        assert_eq!(status, 400, "{body}: {problem}");
        let got = problem["detail"].as_str().expect("detail");
        assert!(got.contains(detail), "{got:?} should say {detail:?}");
    }
    let (status, _) = s.get("/v1/fences/f").await;
    assert_eq!(status, 404, "nothing was stored");
    for (path, status, detail) in [
        (
            "/v1/fences/nothing/events",
            404,
            "fence: no fence \"nothing\"",
        ),
        ("/v1/events", 400, "fence: required"),
        (
            "/v1/events?fence=a&fence=b&fence=c",
            400,
            "fence: a stream may follow at most 2 fences",
        ),
        ("/v1/fences/nothing/inside", 404, "id: no fence \"nothing\""),
    ] {
        let (got, problem) = s.get(path).await;
        assert_eq!(got, status, "{path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .expect("detail")
                .starts_with(detail),
            "{path}: {problem}"
        );
    }
    s.put_json("/v1/fences/f", &circle_fence("v".into(), 10.0))
        .await;
    let request = s
        .client
        .get(s.url("/v1/fences/f/events"))
        .header("last-event-id", "not-an-id");
    let (status, problem) = SseStream::open(request).await.err().expect("refused");
    assert_eq!(status, 400);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .starts_with("Last-Event-ID: ")
    );
}

#[tokio::test]
async fn a_fence_seeing_everyone_needs_the_admin_scope_and_streams_are_counted_per_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        "writer-key-0123456789 read,write\nadmin-key-0123456789 read,write,admin\n",
    )
    .expect("keys");
    let s = TestServer::start_with(|c| {
        c.keys = Some(keys);
        c.max_streams_per_key = 2;
    })
    .await;
    let put = |key: &'static str| {
        s.client
            .put(s.url("/v1/fences/all"))
            .bearer_auth(key)
            .json(&circle_fence(Value::Null, 100.0))
    };
    let (status, problem) = s.send(put("writer-key-0123456789")).await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .starts_with("viewer: null")
    );
    let (status, _) = s.send(put("admin-key-0123456789")).await;
    assert_eq!(status, 201);
    // Fences are per owner: the writer streams a fence of its own.
    let (status, _) = s
        .send(
            s.client
                .put(s.url("/v1/fences/mine"))
                .bearer_auth("writer-key-0123456789")
                .json(&circle_fence("v".into(), 100.0)),
        )
        .await;
    assert_eq!(status, 201);
    let open = || {
        SseStream::open(
            s.client
                .get(s.url("/v1/fences/mine/events"))
                .bearer_auth("writer-key-0123456789"),
        )
    };
    let first = open().await.expect("one");
    let _second = open().await.expect("two");
    let (status, problem) = open().await.err().expect("a third is refused");
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["type"], "/problems/too-many-streams");
    drop(first);
    // The place is given back once the server notices the stream is gone.
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(s) = open().await {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream's place is given back");
}
