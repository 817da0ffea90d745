//! Trips over HTTP, as `../shared/API.md` "Trips and trip sharing" has them: trips and
//! their figures, routes in three formats (paged and simplified), stays named by POIs,
//! followers who see a private traveller only while its trip runs, share links with their
//! windows, revocation and expiry, the follower's stream and page, and erasure.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{SseStream, TestServer, header};

/// A walk north from Helsinki: a point every 10 s, `n` of them, starting at `t0`.
fn walk(t0: i64, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": "ann", "lat": 60.17 + i as f64 * 1e-4, "lon": 24.94, "ts": t0 + i as i64 * 10_000})
        })
        .collect()
}

/// `n` reports of traveller `id`, as [`walk`] makes them.
fn walk_of(id: &str, t0: i64, n: usize) -> Vec<Value> {
    let mut reports = walk(t0, n);
    for r in &mut reports {
        r["id"] = json!(id);
    }
    reports
}

/// Puts ann's trip `hol`, started 1,000 s ago; gives its start.
async fn put_holiday(s: &TestServer) -> i64 {
    let t0 = s.now() - 1_000_000;
    let (status, body) = s
        .put_json(
            "/v1/trips/hol",
            &json!({"traveller": "ann", "title": "Holiday", "started_at": t0}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    t0
}

async fn trip_with_points(s: &TestServer, n: usize) -> i64 {
    let t0 = put_holiday(s).await;
    let mut reports = walk(t0, n);
    // Late, shuffled and repeated, as an offline phone sends them.
    reports.reverse();
    reports.extend(walk(t0, n / 2));
    let (status, body) = s.post_positions(&reports).await;
    assert_eq!(status, 200, "{body}");
    t0
}

#[tokio::test]
async fn a_trip_keeps_its_route_and_figures_and_only_its_traveller_and_followers_see_it() {
    let s = TestServer::start().await;
    let t0 = trip_with_points(&s, 60).await;
    let (status, trip) = s.get("/v1/trips/hol?viewer=ann").await;
    assert_eq!(status, 200, "{trip}");
    assert_eq!(trip["points"], 60);
    assert_eq!(trip["countries"], json!(["FI"]));
    assert_eq!(trip["started_at"], t0);
    assert_eq!(trip["ended_at"], Value::Null);
    assert_eq!(trip["duration_s"], 590.0);
    let distance = trip["distance_m"].as_f64().expect("a distance");
    assert!((distance - 59.0 * 11.12).abs() < 2.0, "{distance}");
    assert!(trip["explored_km2"].as_f64().expect("area") > 0.0);
    assert_eq!(trip["last"]["ts"], t0 + 590_000);
    let bbox = trip["bbox"].as_array().expect("a box");
    assert_eq!(bbox.len(), 4);
    for viewer in ["?viewer=eve", ""] {
        let (status, body) = s.get(&format!("/v1/trips/hol{viewer}")).await;
        assert_eq!(status, 404, "{body}");
    }
    assert_eq!(s.get("/v1/trips/nope?viewer=ann").await.0, 404);
    // Followers see the trip; the traveller is private, so only through the trip.
    assert_eq!(
        s.put_json("/v1/trips/hol/followers/mum", &json!({}))
            .await
            .0,
        204
    );
    assert_eq!(s.get("/v1/trips/hol?viewer=mum").await.0, 200);
    assert_eq!(s.get("/v1/travellers/ann?viewer=mum").await.0, 200);
    assert_eq!(s.get("/v1/travellers/ann?viewer=eve").await.0, 404);
    let (_, list) = s.get("/v1/trips/hol/followers").await;
    assert_eq!(list["results"], json!(["mum"]));
    let (_, trips) = s.get("/v1/travellers/ann/trips?viewer=mum").await;
    assert_eq!(trips["results"][0]["id"], "hol");
    let (_, trips) = s.get("/v1/travellers/ann/trips?viewer=eve").await;
    assert_eq!(trips["results"], json!([]));
    assert_eq!(s.delete("/v1/trips/hol/followers/mum").await.0, 204);
    assert_eq!(s.get("/v1/travellers/ann?viewer=mum").await.0, 404);
    assert_eq!(s.get("/v1/trips/hol?viewer=mum").await.0, 404);
}

#[tokio::test]
async fn bad_trips_are_refused_naming_the_field_and_change_nothing() {
    let s = TestServer::start().await;
    let now = s.now();
    let cases = [
        (json!({"traveller": "ann"}), "title"),
        (json!({"traveller": "a/b", "title": "x"}), "traveller"),
        (
            json!({"traveller": "ann", "title": "x", "started_at": now, "ended_at": now - 1}),
            "ended_at",
        ),
        (
            json!({"traveller": "ann", "title": "x", "colour": "red"}),
            "colour",
        ),
        (
            json!({"traveller": "ann", "title": "x", "started_at": -1}),
            "started_at",
        ),
        (
            json!({"traveller": "ann", "title": "x", "started_at": now, "ended_at": 253_402_300_800_000i64}),
            "ended_at",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = s.put_json("/v1/trips/t", &body).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().expect("detail").contains(field),
            "{problem} names {field}"
        );
    }
    assert_eq!(s.get("/v1/trips/t?viewer=ann").await.0, 404);
    let (status, _) = s
        .put_json(
            "/v1/trips/a",
            &json!({"traveller": "ann", "title": "A", "started_at": now - 100, "ended_at": now + 100}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, problem) = s
        .put_json(
            "/v1/trips/b",
            &json!({"traveller": "ann", "title": "B", "started_at": now}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    let (status, _) = s
        .put_json("/v1/trips/a", &json!({"traveller": "bob", "title": "A"}))
        .await;
    assert_eq!(status, 409, "a trip's traveller never changes");
}

#[tokio::test]
async fn routes_come_in_three_formats_paged_without_gaps_or_repeats_and_simplified() {
    let s = TestServer::start().await;
    let t0 = trip_with_points(&s, 250).await;
    // A gap of an hour starts a second part.
    let later: Vec<Value> = (0..10)
        .map(|i| json!({"id": "ann", "lat": 60.3, "lon": 24.9 + i as f64 * 1e-4, "ts": t0 + 10_000_000 + i * 10_000}))
        .collect();
    assert_eq!(s.post_positions(&later).await.0, 200);
    let (status, feature) = s.get("/v1/trips/hol/route?viewer=ann").await;
    assert_eq!(status, 200, "{feature}");
    assert_eq!(feature["geometry"]["type"], "MultiLineString");
    let lines = feature["geometry"]["coordinates"]
        .as_array()
        .expect("lines");
    assert_eq!(lines.len(), 2, "split at the gap");
    assert_eq!(lines[0].as_array().expect("a line").len(), 250);
    assert_eq!(feature["properties"]["points"], 260);
    assert_eq!(feature["properties"]["next_cursor"], Value::Null);
    // Pages of 70: every point once, in order.
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => "/v1/trips/hol/route?viewer=ann&limit=70".to_string(),
            Some(c) => format!("/v1/trips/hol/route?viewer=ann&limit=70&cursor={c}"),
        };
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for part in page["properties"]["ts"].as_array().expect("times") {
            seen.extend(
                part.as_array()
                    .expect("a part")
                    .iter()
                    .map(|t| t.as_i64().expect("ts")),
            );
        }
        cursor = page["properties"]["next_cursor"].as_str().map(String::from);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 260);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, each once");
    // GPX and polylines.
    let response = s
        .client
        .get(s.url("/v1/trips/hol/route?viewer=ann&format=gpx"))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        header(&response, "content-type"),
        Some("application/gpx+xml")
    );
    let gpx = response.text().await.expect("text");
    assert_eq!(gpx.matches("<trkseg>").count(), 2);
    assert_eq!(gpx.matches("<trkpt").count(), 260);
    let (_, polylines) = s
        .get("/v1/trips/hol/route?viewer=ann&format=polyline")
        .await;
    let decoded = polyline::decode_polyline(polylines["polylines"][0].as_str().expect("a line"), 5)
        .expect("decodes");
    assert_eq!(decoded.0.len(), 250);
    // A straight walk simplifies to its ends.
    let (_, simplified) = s.get("/v1/trips/hol/route?viewer=ann&simplify_m=5").await;
    let lines = simplified["geometry"]["coordinates"]
        .as_array()
        .expect("lines");
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].as_array().expect("a line").len() <= 3,
        "{simplified}"
    );
    let (status, problem) = s
        .get("/v1/trips/hol/route?viewer=ann&simplify_m=5&limit=10")
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, _) = s.get("/v1/trips/hol/route?viewer=ann&format=kml").await;
    assert_eq!(status, 400);
    let (status, _) = s.get("/v1/trips/hol/route?viewer=eve").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_stay_is_named_by_the_nearest_poi() {
    let s = TestServer::start().await;
    s.put_poi("cafe-regatta", 60.1832, 24.9090, "cafe", Some(4.6))
        .await;
    let t0 = s.now() - 10_000_000;
    assert_eq!(
        s.put_json(
            "/v1/trips/t",
            &json!({"traveller": "ann", "title": "Day out", "started_at": t0})
        )
        .await
        .0,
        201
    );
    // 40 minutes at the café, a point a minute, then a walk away.
    let mut reports: Vec<Value> = (0..40)
        .map(|i| json!({"id": "ann", "lat": 60.1832 + (i % 3) as f64 * 1e-5, "lon": 24.9091, "ts": t0 + i * 60_000}))
        .collect();
    reports.extend((1..20).map(|i| {
        json!({"id": "ann", "lat": 60.1832 + i as f64 * 2e-3, "lon": 24.9091, "ts": t0 + 2_400_000 + i * 60_000})
    }));
    assert_eq!(s.post_positions(&reports).await.0, 200);
    let (status, stays) = s.get("/v1/trips/t/stays?viewer=ann").await;
    assert_eq!(status, 200, "{stays}");
    let results = stays["results"].as_array().expect("stays");
    assert_eq!(results.len(), 1, "{stays}");
    assert_eq!(results[0]["arrived"], t0);
    assert_eq!(results[0]["poi"]["id"], "cafe-regatta");
    assert_eq!(results[0]["poi"]["category"], "cafe");
    let (_, none) = s.get("/v1/trips/t/stays?viewer=ann&min_minutes=60").await;
    assert_eq!(none["results"], json!([]));
    let (status, _) = s.get("/v1/trips/t/stays?viewer=ann&radius_m=0").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_share_link_shows_its_window_without_a_key_until_revoked_or_expired() {
    let s = TestServer::start().await;
    let t0 = trip_with_points(&s, 60).await;
    let now = s.now();
    let (status, link) = s
        .send(s.client.post(s.url("/v1/trips/hol/links")).json(&json!({
            "expires_at": now + 3_600_000,
            "show_from": t0 + 100_000,
            "show_to": t0 + 200_000,
        })))
        .await;
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().expect("a token").to_string();
    assert!(token.len() >= 22, "128 bits or more");
    assert_eq!(link["url"], format!("/t/{token}"));
    let (_, listed) = s.get("/v1/trips/hol/links").await;
    assert!(
        !listed.to_string().contains(&token),
        "the token is shown once"
    );
    let (status, shared) = s.get(&format!("/v1/shared/{token}")).await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(shared["points"], 11, "ts in [t0 + 100 s, t0 + 200 s]");
    let (_, route) = s.get(&format!("/v1/shared/{token}/route?from=0")).await;
    assert_eq!(route["properties"]["points"], 11);
    // The page: no key, no referrer.
    let page = s
        .client
        .get(s.url(&format!("/t/{token}")))
        .send()
        .await
        .expect("answers");
    assert_eq!(header(&page, "referrer-policy"), Some("no-referrer"));
    assert_eq!(page.status(), 200, "{:?}", page.text().await);
    assert_eq!(
        s.client
            .get(s.url("/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
            .send()
            .await
            .expect("answers")
            .status(),
        404
    );
    // A guess at the secret with the right selector opens nothing.
    let mut guess = token.clone().into_bytes();
    let last = guess.len() - 1;
    guess[last] = if guess[last] == b'A' { b'B' } else { b'A' };
    let guess = String::from_utf8(guess).expect("ascii");
    assert_eq!(s.get(&format!("/v1/shared/{guess}")).await.0, 404);
    // Revoked: 404 at once.
    let id = link["id"].as_str().expect("an id");
    assert_eq!(s.delete(&format!("/v1/trips/hol/links/{id}")).await.0, 204);
    assert_eq!(s.get(&format!("/v1/shared/{token}")).await.0, 404);
    // Expired: 404 at once, and dropped on the next tick.
    let (_, link) = s
        .send(
            s.client
                .post(s.url("/v1/trips/hol/links"))
                .json(&json!({"expires_at": now + 1_000})),
        )
        .await;
    let token = link["token"].as_str().expect("a token").to_string();
    assert_eq!(s.get(&format!("/v1/shared/{token}")).await.0, 200);
    s.clock.advance(1_000);
    assert_eq!(s.get(&format!("/v1/shared/{token}")).await.0, 404);
    let (status, problem) = s
        .send(
            s.client
                .post(s.url("/v1/trips/hol/links"))
                .json(&json!({"expires_at": now - 1})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn a_follower_stream_resumes_from_the_stored_route_and_tells_the_end() {
    let s = TestServer::start().await;
    let t0 = trip_with_points(&s, 20).await;
    let watch = |after: Option<i64>| {
        let mut request = s.client.get(s.url("/v1/trips/hol/watch?viewer=ann"));
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        request
    };
    let mut stream = SseStream::open(watch(None)).await.expect("opens");
    let first = stream.drain(Duration::from_millis(500)).await;
    assert_eq!(first.len(), 20);
    assert!(first.iter().all(|e| e.event == "point"));
    assert_eq!(first[0].id.as_deref(), Some(t0.to_string().as_str()));
    // A new point arrives live.
    let ts = t0 + 1_000_000;
    assert_eq!(
        s.post_positions(&[json!({"id": "ann", "lat": 60.2, "lon": 24.9, "ts": ts})])
            .await
            .0,
        200
    );
    let live = stream.next(Duration::from_secs(5)).await.expect("a point");
    assert_eq!(live.data["ts"], ts);
    drop(stream);
    // Away for a while: resuming gives exactly what came after.
    let mut resumed = SseStream::open(watch(Some(t0 + 150_000)))
        .await
        .expect("opens");
    let rest = resumed.drain(Duration::from_millis(500)).await;
    let times: Vec<i64> = rest
        .iter()
        .map(|e| e.data["ts"].as_i64().expect("ts"))
        .collect();
    assert_eq!(times.first(), Some(&(t0 + 160_000)));
    assert_eq!(times.last(), Some(&ts));
    assert_eq!(times.len(), 5);
    // The trip ends: `ended`, and the stream closes.
    let now = s.now();
    assert_eq!(
        s.put_json(
            "/v1/trips/hol",
            &json!({"traveller": "ann", "title": "Holiday", "ended_at": now})
        )
        .await
        .0,
        200
    );
    let end = resumed
        .next(Duration::from_secs(5))
        .await
        .expect("an event");
    assert_eq!(end.event, "ended");
    assert!(resumed.next(Duration::from_secs(2)).await.is_none());
    assert!(resumed.ended());
    let (_, trip) = s.get("/v1/trips/hol?viewer=ann").await;
    assert_eq!(
        trip["started_at"], t0,
        "a replace without started_at keeps it"
    );
    assert_eq!(trip["points"], 21);
}

#[tokio::test]
async fn deleting_a_trip_or_its_traveller_erases_the_route() {
    let s = TestServer::start().await;
    trip_with_points(&s, 30).await;
    assert_eq!(s.delete("/v1/trips/hol").await.0, 204);
    assert_eq!(s.get("/v1/trips/hol?viewer=ann").await.0, 404);
    assert_eq!(s.delete("/v1/trips/hol").await.0, 404);
    // A trip of the same id starts with nothing from the one deleted.
    let t0 = s.now() - 1_000_000;
    s.put_json(
        "/v1/trips/hol",
        &json!({"traveller": "ann", "title": "Again", "started_at": t0}),
    )
    .await;
    let (_, trip) = s.get("/v1/trips/hol?viewer=ann").await;
    assert_eq!(trip["points"], 0);
    assert_eq!(s.post_positions(&walk(t0, 5)).await.0, 200);
    assert_eq!(s.delete("/v1/travellers/ann").await.0, 204);
    assert_eq!(s.get("/v1/trips/hol?viewer=ann").await.0, 404);
    let figures = s.state.engine.trip_figures("hol").expect("reads");
    assert_eq!(figures.points, 0, "no point left on disk");
}

#[tokio::test]
async fn share_links_are_read_at_a_bounded_rate_per_address() {
    let s = TestServer::start_with(|c| c.link_rate = 5).await;
    trip_with_points(&s, 5).await;
    let (_, link) = s
        .send(
            s.client
                .post(s.url("/v1/trips/hol/links"))
                .json(&json!({"expires_at": s.now() + 3_600_000})),
        )
        .await;
    let token = link["token"].as_str().expect("a token").to_string();
    let mut refused = None;
    for _ in 0..30 {
        let response = s
            .client
            .get(s.url(&format!("/v1/shared/{token}")))
            .send()
            .await
            .expect("answers");
        if response.status() == 429 {
            refused = Some(header(&response, "retry-after").map(String::from));
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let retry = refused.expect("refused past twice the rate");
    assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)));
    // Keys' routes are not counted against it.
    assert_eq!(s.get("/v1/trips/hol?viewer=ann").await.0, 200);
}

#[tokio::test]
async fn positions_on_trips_get_a_503_to_retry_while_the_route_store_is_behind() {
    // A data directory whose route store holds one fresh piece past the bound, as a run
    // whose route thread could not keep up leaves it.
    let s = TestServer::start_with(|c| {
        std::fs::create_dir_all(&c.data_dir).expect("a data dir");
        let path = c.data_dir.join(proxima::engine::ROUTES_FILE);
        let store = proxima::routes::RouteStore::open(&path).expect("opens");
        for i in 0..=proxima::engine::MAX_FRESH_PIECES as i64 {
            let point = proxima::routes::RoutePoint {
                ts: 1_000 + i,
                lat: 0.0,
                lon: 0.0,
            };
            store
                .add_fresh_trips([("elsewhere", &[point][..])])
                .expect("written");
        }
    })
    .await;
    let t0 = put_holiday(&s).await;

    // Positions on no trip go on.
    let (status, body) = s.post_positions(&walk_of("bob", t0, 1)).await;
    assert_eq!(status, 200, "{body}");
    // A batch holding a trip's point is refused whole, told when to retry.
    let batch = [walk_of("bob", t0 + 60_000, 1), walk(t0, 1)].concat();
    let response = s
        .client
        .post(s.url("/v1/positions"))
        .json(&batch)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(header(&response, "retry-after"), Some("1"));
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(problem["type"], "/problems/routes-behind", "{problem}");
    let (_, bob) = s.get("/v1/travellers/bob?viewer=bob").await;
    assert_eq!(bob["ts"], t0, "nothing of the refused batch applied: {bob}");
    assert_eq!(s.get("/v1/travellers/ann?viewer=ann").await.0, 404);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("proxima_route_store_behind 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("proxima_route_writes_refused_total 1"),
        "{metrics}"
    );

    // Retried as told, it is taken once the route thread has caught up.
    let mut tries = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, body) = s.post_positions(&batch).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        tries += 1;
        assert!(tries < 300, "the route store never caught up");
    }
    let (status, trip) = s.get("/v1/trips/hol?viewer=ann").await;
    assert_eq!(status, 200, "{trip}");
    assert_eq!(trip["points"], 1);
}
