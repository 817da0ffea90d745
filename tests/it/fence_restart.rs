//! Fences across a restart of the real process: after a SIGKILL (the log replayed) or a
//! SIGTERM (the shutdown snapshot loaded), every fence is back as it was, who is inside is
//! worked out again from where the travellers are, an event id from the run before is
//! answered with a reset, and the next move is judged against the recovered membership.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::SseStream;
use crate::process::{self, Proc};

const WAIT: Duration = Duration::from_secs(5);

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("the server answers");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the server answers");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn move_to(&self, id: &str, lat: f64, lon: f64) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        // Each report newer than the last, even within one millisecond.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let body = json!({"lat": lat, "lon": lon, "ts": ts});
        let answer = self
            .put(&format!("/v1/travellers/{id}/position"), &body)
            .await;
        assert_eq!(answer, (200, json!({"applied": true})), "{id}");
    }

    async fn share(&self, id: &str, viewer: &str) {
        let sharing = json!({"visibility": "friends", "viewers": [viewer]});
        let (status, _) = self
            .put(&format!("/v1/travellers/{id}/sharing"), &sharing)
            .await;
        assert_eq!(status, 200);
    }

    async fn stream(&self, fence: &str, last_event_id: Option<&str>) -> SseStream {
        let mut request = self
            .http
            .get(format!("{}/v1/fences/{fence}/events", self.base));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        SseStream::open(request)
            .await
            .unwrap_or_else(|e| panic!("{fence}: {e:?}"))
    }

    async fn inside(&self, fence: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/v1/fences/{fence}/inside")).await;
        assert_eq!(status, 200, "{body}");
        crate::common::TestServer::ids(&body)
    }
}

async fn start(dir: &std::path::Path) -> (Proc, Client) {
    let http = reqwest::Client::new();
    let mut p = process::serve(dir, &["--no-sample", "--fsync", "always"]).expect("starts");
    p.ready(&http).await.expect("gets ready");
    let base = p.base.clone();
    (p, Client { http, base })
}

#[tokio::test]
async fn fences_and_who_is_inside_survive_a_restart_and_old_event_ids_are_reset() {
    let hotel = json!({"area": {"type": "Circle", "center": [24.94, 60.17], "radius_m": 200}, "viewer": "mum"});
    let roaming = json!({"roaming": {"around": "ann", "radius_m": 500}, "viewer": "ann"});
    for signal in ["-KILL", "-TERM"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut p, c) = start(dir.path()).await;
        assert_eq!(c.put("/v1/fences/hotel", &hotel).await.0, 201);
        c.share("kid", "mum").await;
        c.share("bob", "ann").await;
        c.move_to("ann", 60.17, 24.94).await;
        assert_eq!(c.put("/v1/fences/ann-friends", &roaming).await.0, 201);
        let mut events = c.stream("hotel", None).await;
        c.move_to("kid", 60.1705, 24.9405).await;
        c.move_to("bob", 60.172, 24.94).await; // 220 m from ann
        let enter = events.next(WAIT).await.expect("an enter event");
        assert_eq!(enter.event, "enter");
        let (_, hotel_before) = c.get("/v1/fences/hotel").await;
        let (_, roaming_before) = c.get("/v1/fences/ann-friends").await;
        drop(events);
        p.signal_and_wait(signal);

        let (_p, c) = start(dir.path()).await;
        assert_eq!(
            c.get("/v1/fences/hotel").await,
            (200, hotel_before),
            "{signal}"
        );
        assert_eq!(
            c.get("/v1/fences/ann-friends").await,
            (200, roaming_before),
            "{signal}"
        );
        assert_eq!(c.inside("hotel").await, ["kid"], "{signal}");
        assert_eq!(c.inside("ann-friends").await, ["bob"], "{signal}");

        let mut stale = c.stream("hotel", enter.id.as_deref()).await;
        let reset = stale.next(WAIT).await.expect("a reset");
        assert_eq!(
            (reset.event.as_str(), reset.id),
            ("reset", None),
            "{signal}"
        );
        assert_eq!(stale.next(WAIT).await, None);
        assert!(stale.ended(), "a reset ends the stream");

        // Judged against the recovered membership: leaving is an exit, not nothing.
        let mut hotel_events = c.stream("hotel", None).await;
        let mut roaming_events = c.stream("ann-friends", None).await;
        c.move_to("kid", 60.18, 24.94).await;
        c.move_to("bob", 60.19, 24.94).await;
        let exit = hotel_events.next(WAIT).await.expect("an exit");
        assert_eq!(
            (exit.event.as_str(), exit.data["traveller"].as_str()),
            ("exit", Some("kid")),
            "{signal}"
        );
        let away = roaming_events.next(WAIT).await.expect("faraway");
        assert_eq!(
            (away.event.as_str(), away.data["traveller"].as_str()),
            ("faraway", Some("bob")),
            "{signal}"
        );
    }
}
