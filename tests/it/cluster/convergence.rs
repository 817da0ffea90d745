//! Nodes of one cluster converge: a write on one is read on another once it has applied
//! the write's sequence, every kind of change is carried, and a node that joins late
//! catches up from the stream.

use serde_json::json;

use super::{Nats, node, seq_of};

#[tokio::test]
async fn a_write_on_one_node_is_read_on_another_that_waits_for_its_sequence() {
    let Some(nats) = Nats::start("a_write_on_one_node_is_read_on_another") else {
        return;
    };
    let a = node(&nats, "converge").await;
    let b = node(&nats, "converge").await;
    let put = a
        .client
        .put(a.url("/v1/pois/cafe-1"))
        .json(&json!({"lat": 60.17, "lon": 24.94, "name": "Café", "category": "cafe"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 201);
    let seq = seq_of(&put);
    assert!(seq >= 1);
    let read = b
        .client
        .get(b.url("/v1/pois/cafe-1"))
        .header("x-proxima-min-seq", seq.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), 200, "node b has applied the write");
    let body: serde_json::Value = read.json().await.expect("json");
    assert_eq!(body["name"], "Café");
    // The same through the query parameter, and a later sequence than any is a 503.
    let (status, _) = b
        .get(&format!(
            "/v1/pois/nearby?lat=60.17&lon=24.94&min_seq={seq}"
        ))
        .await;
    assert_eq!(status, 200);
    let late = b
        .client
        .get(b.url("/v1/pois/cafe-1"))
        .header("x-proxima-min-seq", (seq + 1000).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(late.status(), 503);
    assert_eq!(
        late.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (status, body) = b.get("/v1/pois/cafe-1?min_seq=soon").await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap_or("").starts_with("min_seq"),
        "{body}"
    );
}

#[tokio::test]
async fn every_kind_of_change_reaches_every_node_and_their_states_are_equal() {
    let Some(nats) = Nats::start("every_kind_of_change_reaches_every_node") else {
        return;
    };
    let a = node(&nats, "kinds").await;
    let b = node(&nats, "kinds").await;
    let now = a.now();
    let mut last = 0;
    let mut write = |response: reqwest::Response| {
        assert!(response.status().is_success(), "{}", response.status());
        last = last.max(seq_of(&response));
    };
    for (i, node) in [&a, &b, &a].into_iter().enumerate() {
        write(
            node.client
                .put(node.url(&format!("/v1/pois/p{i}")))
                .json(
                    &json!({"lat": 60.0 + i as f64, "lon": 24.0, "name": "x", "category": "cafe"}),
                )
                .send()
                .await
                .expect("sent"),
        );
    }
    write(
        a.client
            .delete(a.url("/v1/pois/p1"))
            .send()
            .await
            .expect("sent"),
    );
    write(
        b.client
            .put(b.url("/v1/travellers/ann/sharing"))
            .json(&json!({"visibility": "public"}))
            .send()
            .await
            .expect("sent"),
    );
    let batch = (0..50)
        .map(|i| json!({"id": format!("t{i}"), "lat": 60.1, "lon": 24.9 + f64::from(i) * 0.001, "ts": now}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    write(
        a.client
            .post(a.url("/v1/positions"))
            .header("content-type", "application/x-ndjson")
            .body(batch)
            .send()
            .await
            .expect("sent"),
    );
    write(
        b.client
            .put(b.url("/v1/travellers/ann/position"))
            .json(&json!({"lat": 60.17, "lon": 24.94, "ts": now}))
            .send()
            .await
            .expect("sent"),
    );
    write(
        a.client
            .put(a.url("/v1/fences/hotel"))
            .json(&json!({"area": {"type": "Circle", "center": [24.94, 60.17], "radius_m": 100}, "viewer": null}))
            .send()
            .await
            .expect("sent"),
    );
    write(
        b.client
            .delete(b.url("/v1/travellers/t3"))
            .send()
            .await
            .expect("sent"),
    );
    write(
        a.client
            .post(a.url("/v1/pois/import?format=ndjson"))
            .header("content-type", "application/x-ndjson")
            .body(
                r#"{"id":"imp-1","lat":61.0,"lon":25.0,"name":"x","category":"museum"}
{"id":"imp-2","lat":61.1,"lon":25.0,"name":"y","category":"museum"}"#,
            )
            .send()
            .await
            .expect("sent"),
    );
    for node in [&a, &b] {
        let (status, _) = node.get(&format!("/v1/stats?min_seq={last}")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        a.state.engine.dump(),
        b.state.engine.dump(),
        "the same POIs and travellers"
    );
    let (_, stats_a) = a.get("/v1/stats?digest=true").await;
    let (_, stats_b) = b.get("/v1/stats?digest=true").await;
    assert_eq!(stats_a["cluster"]["applied_seq"], last);
    assert_eq!(stats_b["cluster"]["applied_seq"], last);
    assert_eq!(stats_a["digest"].as_str().map(str::len), Some(64));
    assert_eq!(stats_a["digest"], stats_b["digest"], "equal digests");
    assert_eq!(a.state.engine.poi_count(), 4, "p0, p2 and the two imported");
    assert_eq!(
        a.state.engine.traveller_count(),
        50,
        "t0..t49 less t3, plus ann"
    );
    for node in [&a, &b] {
        assert!(
            node.state
                .engine
                .fence(&proxima::fences::FenceKey::new("open", "hotel"))
                .is_some()
        );
    }
}

#[tokio::test]
async fn a_node_that_joins_late_catches_up_from_the_stream() {
    let Some(nats) = Nats::start("a_node_that_joins_late_catches_up") else {
        return;
    };
    let a = node(&nats, "late").await;
    for i in 0..40 {
        let (status, _) = a
            .put_json(
                &format!("/v1/pois/p{i:02}"),
                &json!({"lat": 10.0 + f64::from(i) * 0.01, "lon": 20.0, "name": "x", "category": "museum"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let b = node(&nats, "late").await;
    // Ready means caught up: b has every write a acknowledged.
    assert_eq!(b.get("/readyz").await.0, 200);
    assert_eq!(b.state.engine.poi_count(), 40);
    assert_eq!(a.state.engine.dump(), b.state.engine.dump());
}

#[tokio::test]
async fn a_new_node_starts_from_the_uploaded_snapshot_after_the_stream_is_trimmed() {
    let Some(nats) = Nats::start("a_new_node_starts_from_the_uploaded_snapshot") else {
        return;
    };
    let url = nats.url();
    let a = crate::common::TestServer::start_with(move |c| {
        c.cluster = vec![url];
        c.cluster_name = "boot".into();
        c.snapshot_every = 1;
    })
    .await;
    for i in 0..30 {
        let (status, _) = a
            .put_json(
                &format!("/v1/pois/p{i:02}"),
                &json!({"lat": 48.0, "lon": 2.0 + f64::from(i) * 0.001, "name": "x", "category": "cafe"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    // Within a few rounds two snapshots covering the writes are uploaded and the stream
    // trimmed below the older (writes go on meanwhile, so that each round has something
    // newer to upload).
    let jetstream =
        async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("nats"));
    let mut stream = jetstream.get_stream("BOOT").await.expect("the stream");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut extra = 0;
    loop {
        let first = stream.info().await.expect("info").state.first_sequence;
        if first > 30 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream was not trimmed: it starts at {first}"
        );
        extra += 1;
        let (status, _) = a
            .put_json(
                &format!("/v1/pois/more{extra:03}"),
                &json!({"lat": 47.0, "lon": 2.0, "name": "x", "category": "cafe"}),
            )
            .await;
        assert_eq!(status, 201);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, _) = a
        .put_json(
            "/v1/pois/later",
            &json!({"lat": 48.0, "lon": 2.5, "name": "x", "category": "museum"}),
        )
        .await;
    assert_eq!(status, 201);
    // The first writes are in no stream message any more: b can only have them from the
    // snapshot, and the last from the stream after it.
    let b = node(&nats, "boot").await;
    let (_, last) = a.get("/v1/stats").await;
    let last = last["cluster"]["applied_seq"].as_u64().expect("a sequence");
    let (_, stats_b) = b
        .get(&format!("/v1/stats?digest=true&min_seq={last}"))
        .await;
    let (_, stats_a) = a.get("/v1/stats?digest=true").await;
    assert_eq!(stats_b["pois"], 31 + extra);
    assert_eq!(stats_a["digest"], stats_b["digest"]);
}

#[tokio::test]
async fn an_import_larger_than_a_nats_message_is_applied_in_parts_on_every_node() {
    let Some(nats) = Nats::start("an_import_larger_than_a_nats_message") else {
        return;
    };
    let a = node(&nats, "parts").await;
    let b = node(&nats, "parts").await;
    assert_eq!(
        a.put_json(
            "/v1/pois/old",
            &json!({"lat": 1.0, "lon": 1.0, "name": "x", "category": "cafe"})
        )
        .await
        .0,
        201
    );
    // 20,000 POIs: about 1.5 MB as one log record, more than NATS's 1 MiB message.
    let body = (0..20_000)
        .map(|i| {
            json!({"id": format!("imp-{i:05}"), "lat": 40.0 + f64::from(i) * 1e-4, "lon": -3.7, "name": format!("Imported place number {i}"), "category": "museum"})
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(body.len() > 1 << 20);
    let response = a
        .client
        .post(a.url("/v1/pois/import?format=ndjson&mode=replace"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let seq = seq_of(&response);
    let summary: serde_json::Value = response.json().await.expect("json");
    assert_eq!(summary["imported"], 20_000);
    assert!(seq >= 3, "the import went as several stream records: {seq}");
    for server in [&a, &b] {
        let (_, stats) = server
            .get(&format!("/v1/stats?min_seq={seq}&digest=true"))
            .await;
        assert_eq!(
            stats["pois"], 20_000,
            "the replace dropped the POI before it"
        );
    }
    let (_, stats_a) = a.get("/v1/stats?digest=true").await;
    let (_, stats_b) = b.get("/v1/stats?digest=true").await;
    assert_eq!(stats_a["digest"], stats_b["digest"]);
}

/// A trip made on one node, its positions sent to the other, its follower and link: every
/// node holds the same trip, the same route on its own disk, the same figures, and the
/// same follower sees the traveller; the link opens on both, and revoked on one, on
/// neither.
#[tokio::test]
async fn a_trip_and_its_route_are_the_same_on_every_node() {
    let Some(nats) = Nats::start("a_trip_and_its_route_are_the_same_on_every_node") else {
        return;
    };
    let a = node(&nats, "trips").await;
    let b = node(&nats, "trips").await;
    let t0 = a.now() - 600_000;
    let mut last = 0;
    let mut write = |response: reqwest::Response| {
        assert!(response.status().is_success(), "{}", response.status());
        last = last.max(seq_of(&response));
    };
    write(
        a.client
            .put(a.url("/v1/trips/tour"))
            .json(&json!({"traveller": "ann", "title": "Tour", "started_at": t0}))
            .send()
            .await
            .expect("sent"),
    );
    write(
        b.client
            .put(b.url("/v1/trips/tour/followers/mum"))
            .send()
            .await
            .expect("sent"),
    );
    let batch = (0..40)
        .rev()
        .map(|i| json!({"id": "ann", "lat": 60.1 + f64::from(i) * 1e-3, "lon": 24.9, "ts": t0 + i64::from(i) * 10_000}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    write(
        b.client
            .post(b.url("/v1/positions"))
            .header("content-type", "application/x-ndjson")
            .body(batch)
            .send()
            .await
            .expect("sent"),
    );
    let link = a
        .client
        .post(a.url("/v1/trips/tour/links"))
        .json(&json!({"expires_at": a.now() + 3_600_000}))
        .send()
        .await
        .expect("sent");
    last = last.max(seq_of(&link));
    let link: serde_json::Value = link.json().await.expect("JSON");
    let token = link["token"].as_str().expect("a token").to_string();
    let mut trips = Vec::new();
    for node in [&a, &b] {
        let (status, trip) = node
            .get(&format!("/v1/trips/tour?viewer=mum&min_seq={last}"))
            .await;
        assert_eq!(status, 200, "{trip}");
        assert_eq!(trip["points"], 40);
        let (_, route) = node.get("/v1/trips/tour/route?viewer=ann").await;
        assert_eq!(route["properties"]["points"], 40);
        assert_eq!(node.get(&format!("/v1/shared/{token}")).await.0, 200);
        trips.push(trip);
        // Changes apply at the stream's time, which here is before the trip's start (the
        // nodes' clocks are set ahead): the trip starts with the clock tick a node logs
        // once it is due, on every node alike.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while node.get("/v1/travellers/ann?viewer=mum").await.0 != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "the follower sees the traveller once the trip has started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(node.get("/v1/travellers/ann?viewer=eve").await.0, 404);
    }
    assert_eq!(trips[0], trips[1], "the same figures");
    let revoked = b
        .client
        .delete(b.url(&format!(
            "/v1/trips/tour/links/{}",
            link["id"].as_str().expect("an id")
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(revoked.status(), 204);
    let last = seq_of(&revoked);
    for node in [&a, &b] {
        assert_eq!(node.get(&format!("/v1/stats?min_seq={last}")).await.0, 200);
        assert_eq!(node.get(&format!("/v1/shared/{token}")).await.0, 404);
    }
}

/// A device made on one node reports through the other, and revoked on that one, its token
/// is refused on both: minting and revoking are changes in the stream like any other.
#[tokio::test]
async fn a_device_token_works_and_is_revoked_on_every_node() {
    let Some(nats) = Nats::start("a_device_token_works_and_is_revoked_on_every_node") else {
        return;
    };
    let a = node(&nats, "devices").await;
    let b = node(&nats, "devices").await;
    let made = a
        .client
        .post(a.url("/v1/travellers/ann/devices"))
        .json(&json!({"name": "phone"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(made.status(), 201);
    let last = seq_of(&made);
    let made: serde_json::Value = made.json().await.expect("JSON");
    let token = made["token"].as_str().expect("a token").to_owned();
    let report = |node: &crate::common::TestServer, tst: i64| {
        node.client
            .post(node.url("/v1/ingest/owntracks"))
            .basic_auth("ann", Some(&token))
            .json(&json!({"_type": "location", "lat": 60.1, "lon": 24.9, "tst": tst}))
    };
    assert_eq!(b.get(&format!("/v1/stats?min_seq={last}")).await.0, 200);
    let tst = b.now() / 1000 - 60;
    let sent = report(&b, tst).send().await.expect("sent");
    assert_eq!(
        sent.status(),
        200,
        "the token opens its device on the other node"
    );
    let last = seq_of(&sent);
    for node in [&a, &b] {
        let (status, ann) = node
            .get(&format!("/v1/travellers/ann?viewer=ann&min_seq={last}"))
            .await;
        assert_eq!(status, 200, "{ann}");
        assert_eq!(ann["ts"], tst * 1000);
    }
    let revoked = b
        .client
        .delete(b.url(&format!(
            "/v1/travellers/ann/devices/{}",
            made["id"].as_str().expect("an id")
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(revoked.status(), 204);
    let last = seq_of(&revoked);
    for node in [&a, &b] {
        assert_eq!(node.get(&format!("/v1/stats?min_seq={last}")).await.0, 200);
        let refused = report(node, tst + 1).send().await.expect("sent");
        assert_eq!(refused.status(), 401, "revoked on every node");
    }
}
