//! Fence events in a cluster: every node gives every event with the same id, so a client
//! resumes on any node; expiries come from the stream's clock ticks, the same everywhere;
//! and `--cluster-events` stores every event once in JetStream, whichever nodes publish it.

use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Nats, seq_of};
use crate::common::{SseEvent, SseStream, TestServer};

const QUIET: Duration = Duration::from_millis(1_500);

/// A node of cluster `name` on `nats` that also exports its events, travellers expiring
/// after 60 s.
async fn exporting_node(nats: &Nats, name: &str) -> TestServer {
    let url = nats.url();
    let name = name.to_string();
    TestServer::start_with(move |c| {
        c.cluster = vec![url];
        c.cluster_name = name;
        c.cluster_events = true;
        c.traveller_ttl = 60;
        c.max_wait = 2;
        c.max_lag = 1;
    })
    .await
}

async fn stream(node: &TestServer, after: Option<&str>) -> SseStream {
    let mut request = node.client.get(node.url("/v1/fences/plaza/events"));
    if let Some(after) = after {
        request = request.header("last-event-id", after);
    }
    SseStream::open(request).await.expect("a stream")
}

/// Waits until `node` judges fences (it starts at once on an empty stream).
async fn judging(node: &TestServer) {
    for _ in 0..100 {
        let (_, stats) = node.get("/v1/stats").await;
        if stats["cluster"]["judging_fences"] == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node never started judging fences");
}

fn summary(events: &[SseEvent]) -> Vec<(Option<String>, String, Value)> {
    events
        .iter()
        .map(|e| (e.id.clone(), e.event.clone(), e.data.clone()))
        .collect()
}

#[tokio::test]
async fn every_node_gives_each_event_the_same_id_and_a_client_resumes_on_another_node() {
    let Some(nats) = Nats::start("every_node_gives_each_event_the_same_id") else {
        return;
    };
    let a = exporting_node(&nats, "evt").await;
    let b = exporting_node(&nats, "evt").await;
    judging(&a).await;
    judging(&b).await;
    let put = a
        .client
        .put(a.url("/v1/fences/plaza"))
        .json(&json!({"area": {"type": "Circle", "center": [24.94, 60.17], "radius_m": 500}, "viewer": null}))
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 201);
    let seq = seq_of(&put);
    // Listed on b (once b has the fence): its id says "after change n".
    let listed = b
        .client
        .get(b.url("/v1/fences/plaza/inside"))
        .header("x-proxima-min-seq", seq.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.expect("json");
    let listed_id = listed["last_event_id"].as_str().expect("an id").to_string();
    let mut on_a = stream(&a, Some(&listed_id)).await;
    let mut on_b = stream(&b, Some(&listed_id)).await;
    // Six travellers in one batch (one change, several events), then three leave.
    let now = a.now();
    let inside: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("t{i}"), "lat": 60.17 + f64::from(i) * 0.0005, "lon": 24.94, "ts": now}))
        .collect();
    assert_eq!(a.post_positions(&inside).await.0, 200);
    for i in 0..3 {
        let (status, _) = b
            .put_json(
                &format!("/v1/travellers/t{i}/position"),
                &json!({"lat": 61.0, "lon": 25.0, "ts": now + 1}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let got_a = on_a.drain(QUIET).await;
    let got_b = on_b.drain(QUIET).await;
    assert_eq!(got_a.len(), 9, "{got_a:?}");
    assert_eq!(
        summary(&got_a),
        summary(&got_b),
        "the same events, the same ids"
    );
    let first_id = got_a[0].id.as_deref().unwrap_or("");
    assert!(
        first_id.starts_with(&listed_id[..9]) && first_id.contains('.'),
        "{first_id}: the cluster's epoch, then the change's sequence and the index"
    );
    let batch: Vec<&str> = got_a[..6]
        .iter()
        .map(|e| e.data["traveller"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        batch,
        ["t0", "t1", "t2", "t3", "t4", "t5"],
        "one change's events by traveller"
    );
    // A client that read four events on a resumes on b.
    let fourth = got_a[3].id.clone().expect("an id");
    let mut resumed = stream(&b, Some(&fourth)).await;
    assert_eq!(summary(&resumed.drain(QUIET).await), summary(&got_a[4..]));

    // Expiry: both nodes' clocks pass the time-to-live; the clock tick in the stream makes
    // the last three leave, at the same place on both nodes.
    a.clock.advance(61_000);
    b.clock.advance(61_000);
    let expired_a = on_a.drain(Duration::from_secs(4)).await;
    let expired_b = on_b.drain(QUIET).await;
    assert_eq!(expired_a.len(), 3, "{expired_a:?}");
    assert!(
        expired_a
            .iter()
            .all(|e| e.event == "exit" && e.data["cause"] == "expired")
    );
    assert_eq!(summary(&expired_a), summary(&expired_b));

    // Every event went to JetStream once, in order, though both nodes published it.
    let all: Vec<SseEvent> = got_a.into_iter().chain(expired_a).collect();
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let js = jetstream::new(client);
    let mut events_stream = js
        .get_stream("EVT_EVENTS")
        .await
        .expect("the events stream");
    let mut stored = 0;
    for _ in 0..50 {
        stored = events_stream.info().await.expect("info").state.messages;
        if stored >= all.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stored = events_stream
        .info()
        .await
        .expect("info")
        .state
        .messages
        .max(stored);
    assert_eq!(stored, all.len() as u64, "each event stored once");
    let consumer = events_stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("a consumer");
    let mut messages = consumer.messages().await.expect("messages");
    for event in &all {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("in time")
            .expect("a message")
            .expect("readable");
        assert_eq!(message.subject.as_str(), "evt.events.open.plaza");
        let headers = message.headers.as_ref().expect("headers");
        assert_eq!(
            headers.get("Proxima-Fence-Owner").map(|v| v.as_str()),
            Some("open")
        );
        assert_eq!(
            headers.get("Proxima-Event-Id").map(|v| v.as_str()),
            event.id.as_deref()
        );
        assert_eq!(
            headers.get("Proxima-Event").map(|v| v.as_str()),
            Some(event.event.as_str())
        );
        let data: Value = serde_json::from_slice(&message.payload).expect("json");
        assert_eq!(data, event.data);
    }
}
