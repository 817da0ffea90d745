//! NATS going away: writes are refused (503, not acknowledged) while reads keep serving,
//! the node reports not-ready past `--max-lag`, and all of it recovers when NATS returns,
//! with nothing acknowledged lost.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Nats, node};

#[tokio::test]
async fn with_nats_down_writes_are_refused_reads_serve_and_both_recover() {
    let Some(mut nats) = Nats::start("with_nats_down_writes_are_refused") else {
        return;
    };
    let a = node(&nats, "outage").await;
    let poi =
        |i: u32| json!({"lat": 1.0, "lon": f64::from(i) * 0.01, "name": "x", "category": "cafe"});
    assert_eq!(a.put_json("/v1/pois/before", &poi(0)).await.0, 201);
    nats.kill();
    let started = Instant::now();
    let (status, body) = a.put_json("/v1/pois/during", &poi(1)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("cluster:"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by --max-wait"
    );
    assert_eq!(a.get("/v1/pois/before").await.0, 200, "reads keep serving");
    // Cut off for longer than --max-lag (1 s): not ready.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = a.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    nats.restart();
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // 200 or 201: an attempt answered 503 may still have reached the stream (the
        // client sends what it held once NATS is back), so the PUT may replace it.
        let (status, _) = a.put_json("/v1/pois/after", &poi(2)).await;
        if status == 201 || status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "writes recovered {} ms after NATS restarted",
        restarted.elapsed().as_millis()
    );
    a.wait_ready().await;
    assert_eq!(
        a.get("/v1/pois/before").await.0,
        200,
        "nothing acknowledged was lost"
    );
    assert_eq!(a.get("/v1/pois/after").await.0, 200);
    // A node started now replays the same stream to the same state.
    let b = node(&nats, "outage").await;
    assert_eq!(a.state.engine.dump(), b.state.engine.dump());
}
