//! Trackers over real HTTP: device tokens made, listed and revoked by their traveller only,
//! and the OwnTracks, Overland and OsmAnd routes each fed its app's published example.
//! Every route checks the token: a revoked one is a 401 at once, a token for `ann`
//! reporting as `bob` is a 403 that changes nothing, and a device token reads nothing but
//! OwnTracks' friends answer.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::TestServer;

const SERVICE_KEY: &str = "service-key-0123456789";
const AUDIENCE: &str = "proxima-test";
const ISSUER: &str = "https://auth.example.test";

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

/// A server with a service key and HS256 traveller tokens, `adjust`ed.
async fn server_with(adjust: impl FnOnce(&mut proxima::config::ServeConfig)) -> TestServer {
    TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(&keys, format!("{SERVICE_KEY} read,write,admin\n")).expect("keys");
        c.keys = Some(keys);
        c.jwt_hs256_secret_file = Some(fixture("hs256-secret.txt"));
        c.jwt_audience = Some(AUDIENCE.into());
        c.jwt_issuer = Some(ISSUER.into());
        adjust(c);
    })
    .await
}

pub(crate) async fn server() -> TestServer {
    server_with(|_| {}).await
}

/// A traveller token for `sub`, read and write.
pub(crate) fn traveller_token(sub: &str) -> String {
    token_with_scope(sub, "read write")
}

/// A traveller token for `sub` with `scope`.
fn token_with_scope(sub: &str, scope: &str) -> String {
    let mut secret = std::fs::read(fixture("hs256-secret.txt")).expect("fixture");
    while secret.last() == Some(&b'\n') {
        secret.pop();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let claims = json!({"sub": sub, "aud": AUDIENCE, "iss": ISSUER, "exp": now + 600, "iat": now, "scope": scope});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&secret).expect("a secret"),
    )
    .expect("signs")
}

pub(crate) async fn as_key(s: &TestServer, request: reqwest::RequestBuilder) -> (u16, Value) {
    s.send(request.bearer_auth(SERVICE_KEY)).await
}

/// Makes a device for `traveller` with the service key; gives its id and token.
async fn device(s: &TestServer, traveller: &str, name: &str) -> (String, String) {
    let (status, body) = as_key(
        s,
        s.client
            .post(s.url(&format!("/v1/travellers/{traveller}/devices")))
            .json(&json!({"name": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["token"].as_str().expect("token").to_owned(),
    )
}

/// Where `id` is as `viewer` sees it, read with the service key.
async fn position(s: &TestServer, id: &str) -> Option<Value> {
    let (status, body) = as_key(
        s,
        s.client
            .get(s.url(&format!("/v1/travellers/{id}?viewer={id}"))),
    )
    .await;
    (status == 200).then_some(body)
}

fn owntracks(s: &TestServer, user: &str, password: &str, body: &str) -> reqwest::RequestBuilder {
    s.client
        .post(s.url("/v1/ingest/owntracks"))
        .basic_auth(user, Some(password))
        .header("content-type", "application/json")
        .body(body.to_owned())
}

#[tokio::test]
async fn devices_are_made_listed_and_revoked_by_their_traveller_only() {
    let s = server().await;
    let ann = traveller_token("ann");
    let (status, made) = s
        .send(
            s.client
                .post(s.url("/v1/travellers/ann/devices"))
                .bearer_auth(&ann)
                .json(&json!({"name": "Ann's phone"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().expect("shown once");
    assert!(token.starts_with("pxd_") && token.len() > 32);
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/v1/travellers/bob/devices"))
                .bearer_auth(&ann)
                .json(&json!({"name": "not hers"})),
        )
        .await;
    assert_eq!(status, 403, "ann's token makes no device for bob");
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/travellers/ann/devices"))
                .bearer_auth(token_with_scope("ann", "write"))
                .json(&json!({"name": "a reader"})),
        )
        .await;
    assert_eq!(
        status, 403,
        "a write-only token makes no token that reads: {body}"
    );
    let (status, _) = s
        .send(
            s.client
                .get(s.url("/v1/travellers/bob/devices"))
                .bearer_auth(&ann),
        )
        .await;
    assert_eq!(status, 403, "nor lists bob's");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"nom": "x"}),
    ] {
        let (status, body) = s
            .send(
                s.client
                    .post(s.url("/v1/travellers/ann/devices"))
                    .bearer_auth(&ann)
                    .json(&bad),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, listed) = s
        .send(
            s.client
                .get(s.url("/v1/travellers/ann/devices"))
                .bearer_auth(&ann),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["results"].as_array().expect("a list").len(),
        1,
        "{listed}"
    );
    assert_eq!(listed["results"][0]["name"], "Ann's phone");
    assert!(
        listed["results"][0].get("token").is_none(),
        "never the token again"
    );
    let id = made["id"].as_str().expect("id");
    let revoke = |who: &str| {
        s.client
            .delete(s.url(&format!("/v1/travellers/{who}/devices/{id}")))
            .bearer_auth(&ann)
    };
    assert_eq!(s.send(revoke("bob")).await.0, 403);
    assert_eq!(s.send(revoke("ann")).await.0, 204);
    assert_eq!(s.send(revoke("ann")).await.0, 404, "gone");
}

#[tokio::test]
async fn owntracks_stores_the_booklets_location_and_answers_with_friends_only() {
    let s = server().await;
    let (_, token) = device(&s, "ann", "phone").await;
    let now_s = s.now() / 1000;
    // bob shares with ann as a friend, carol with everyone, dave with nobody: only bob is
    // ann's friend on her map.
    for (who, sharing) in [
        ("bob", json!({"visibility": "friends", "viewers": ["ann"]})),
        ("carol", json!({"visibility": "public"})),
        ("dave", json!({"visibility": "private"})),
    ] {
        let (status, _) = as_key(
            &s,
            s.client
                .put(s.url(&format!("/v1/travellers/{who}/sharing")))
                .json(&sharing),
        )
        .await;
        assert_eq!(status, 200, "{who}");
    }
    let (status, _) = as_key(
        &s,
        s.client
            .post(s.url("/v1/positions"))
            .header("content-type", "application/x-ndjson")
            .body(
                ["bob", "carol", "dave"]
                    .iter()
                    .map(|id| {
                        format!(
                            "{}\n",
                            json!({"id": id, "lat": 48.86, "lon": 2.30, "ts": s.now() - 1_000})
                        )
                    })
                    .collect::<String>(),
            ),
    )
    .await;
    assert_eq!(status, 200);

    // The booklet's location message, at the server's time.
    let message = json!({
        "_type": "location", "acc": 75, "alt": 13, "batt": 40, "bs": 1, "cog": 270,
        "conn": "w", "lat": 48.85833, "lon": 2.29513, "rad": 0, "t": "u", "tid": "JJ",
        "tst": now_s, "vac": 10, "vel": 54, "p": 101
    })
    .to_string();
    let (status, answer) = s.send(owntracks(&s, "ann", &token, &message)).await;
    assert_eq!(status, 200, "{answer}");
    let at = position(&s, "ann").await.expect("stored");
    assert_eq!(
        (at["lat"].as_f64(), at["lon"].as_f64()),
        (Some(48.85833), Some(2.29513))
    );
    assert_eq!(at["ts"].as_i64(), Some(now_s * 1000));
    assert_eq!(at["accuracy_m"].as_f64(), Some(75.0));
    let named: Vec<(&str, &str)> = answer
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| {
            (
                m["_type"].as_str().expect("typed"),
                m["topic"].as_str().expect("topic"),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("card", "owntracks/bob/proxima"),
            ("location", "owntracks/bob/proxima")
        ],
        "bob, not the public carol nor the private dave"
    );

    // Friends are told at most every 30 s a device: the next answer is empty, and the app
    // keeps what it was told.
    let (status, answer) = s.send(owntracks(&s, "ann", &token, &message)).await;
    assert_eq!((status, answer), (200, json!([])));

    // Other types and an empty body: 200, nothing stored; encrypted: 400 saying why.
    for ignored in [
        "",
        r#"{"_type":"lwt","tst":1}"#,
        r#"{"_type":"transition","event":"enter"}"#,
    ] {
        let (status, _) = s.send(owntracks(&s, "ann", &token, ignored)).await;
        assert_eq!(status, 200, "{ignored}");
    }
    let (status, body) = s
        .send(owntracks(
            &s,
            "ann",
            &token,
            r#"{"_type":"encrypted","data":"x"}"#,
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("encrypted")
    );
    // A location off the globe reads but is no report: taken (the app would send it again
    // for ever), and not stored.
    let (status, _) = s
        .send(owntracks(
            &s,
            "ann",
            &token,
            &json!({"_type": "location", "lat": 91, "lon": 0, "tst": now_s + 1}).to_string(),
        ))
        .await;
    assert_eq!(status, 200);
    let kept = position(&s, "ann").await.expect("kept");
    assert_eq!(
        kept["ts"].as_i64(),
        Some(now_s * 1000),
        "the bad fix was not stored"
    );
    let (status, _) = s.send(owntracks(&s, "ann", &token, "{not json")).await;
    assert_eq!(status, 400, "an unreadable body is refused");
}

#[tokio::test]
async fn device_tokens_are_checked_on_every_route() {
    let s = server().await;
    let (id, token) = device(&s, "ann", "phone").await;
    let now_s = s.now() / 1000;
    let message = json!({"_type": "location", "lat": 1.0, "lon": 2.0, "tst": now_s}).to_string();

    // A token for ann reporting as bob: 403 on each protocol, and nothing changes.
    let (status, _) = s.send(owntracks(&s, "bob", &token, &message)).await;
    assert_eq!(status, 403);
    let (status, _) = s
        .send(s.client.get(s.url(&format!(
            "/v1/ingest/osmand?id=bob&lat=1&lon=2&timestamp={now_s}&token={token}"
        ))))
        .await;
    assert_eq!(status, 403);
    assert!(
        position(&s, "ann").await.is_none(),
        "a refused report stores nothing, for ann either"
    );

    // A traveller id with colons in it (as Basic auth's user) still names its traveller.
    let (_, colons) = device(&s, "app:user:7", "phone").await;
    let (status, _) = s.send(owntracks(&s, "app:user:7", &colons, &message)).await;
    assert_eq!(status, 200);
    assert!(position(&s, "app:user:7").await.is_some());

    // Wrong or missing credentials: 401, OwnTracks asked for Basic auth.
    let response = owntracks(&s, "ann", "pxd_wrong", &message)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"proxima\"")
    );
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/v1/ingest/overland"))
                .json(&json!({"locations": []})),
        )
        .await;
    assert_eq!(status, 401);

    // A device token reads nothing, and writes nothing elsewhere.
    for request in [
        s.client.get(s.url("/v1/travellers/ann?viewer=ann")),
        s.client
            .get(s.url("/v1/travellers/nearby?lat=1&lon=2&radius_m=1000")),
        s.client.get(s.url("/v1/travellers/ann/devices")),
        s.client
            .put(s.url("/v1/travellers/ann/position"))
            .json(&json!({"lat": 1.0, "lon": 2.0, "ts": s.now()})),
    ] {
        let (status, body) = s.send(request.bearer_auth(&token)).await;
        assert_eq!(status, 403, "{body}");
    }

    // Revoked: 401 at once, everywhere.
    let (status, _) = s.send(owntracks(&s, "ann", &token, &message)).await;
    assert_eq!(status, 200);
    let (status, _) = as_key(
        &s,
        s.client
            .delete(s.url(&format!("/v1/travellers/ann/devices/{id}"))),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = s.send(owntracks(&s, "ann", &token, &message)).await;
    assert_eq!(status, 401);
    let (status, _) = s
        .send(
            s.client
                .get(s.url("/v1/travellers/ann?viewer=ann"))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn overland_stores_the_readmes_batch_and_answers_ok_with_bad_points_counted() {
    let s = server().await;
    let (_, token) = device(&s, "ann", "phone").await;
    // The README's point, at the server's time (its offset written as the app does).
    let at = time::OffsetDateTime::from_unix_timestamp(s.now() / 1000 - 60)
        .expect("a time")
        .to_offset(time::UtcOffset::from_hms(-7, 0, 0).expect("an offset"));
    let stamp = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}-0700",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let batch = json!({
        "locations": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-122.030581, 37.331800]},
                "properties": {
                    "timestamp": stamp, "altitude": 0, "speed": 4, "horizontal_accuracy": 30,
                    "vertical_accuracy": -1, "motion": ["driving", "stationary"], "pauses": false,
                    "activity": "other_navigation", "desired_accuracy": 100, "deferred": 1000,
                    "significant_change": "disabled", "locations_in_payload": 1,
                    "battery_state": "charging", "battery_level": 0.89, "device_id": "", "wifi": ""
                }
            },
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}
        ]
    });
    let (status, answer) = s
        .send(
            s.client
                .post(s.url("/v1/ingest/overland"))
                .bearer_auth(&token)
                .json(&batch),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"], "ok",
        "the app deletes its batch on ok alone"
    );
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected_count"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    let at = position(&s, "ann").await.expect("stored");
    assert_eq!(
        (at["lat"].as_f64(), at["lon"].as_f64()),
        (Some(37.3318), Some(-122.030581))
    );
    assert_eq!(at["ts"].as_i64(), Some((s.now() / 1000 - 60) * 1000));
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/v1/ingest/overland"))
                .bearer_auth(&token)
                .body("{\"points\": []}"),
        )
        .await;
    assert_eq!(status, 400, "an unreadable body is not ok");
    let too_many: Vec<Value> = (0..1_001)
        .map(|i| json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"timestamp": "2015-10-01T08:00:00Z", "n": i}}))
        .collect();
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/ingest/overland"))
                .bearer_auth(&token)
                .json(&json!({"locations": too_many})),
        )
        .await;
    assert_eq!(status, 400, "at most 1,000 points a batch");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .starts_with("locations")
    );
}

#[tokio::test]
async fn osmand_takes_query_form_and_traccar_json_reports() {
    let s = server().await;
    let (_, token) = device(&s, "ann", "phone").await;
    let now_s = s.now() / 1000;
    // Traccar's example URL, filled in, with the token Proxima adds.
    let (status, _) = s
        .send(s.client.get(s.url(&format!(
            "/v1/ingest/osmand?id=ann&lat=34.0522&lon=-118.2437&timestamp={}&hdop=1.2&altitude=100&speed=50&token={token}",
            now_s - 30
        ))))
        .await;
    assert_eq!(status, 200);
    let at = position(&s, "ann").await.expect("stored");
    assert_eq!(at["ts"].as_i64(), Some((now_s - 30) * 1000));
    // As a form, milliseconds, `location=`.
    let (status, _) = s
        .send(s.client.post(s.url("/v1/ingest/osmand")).form(&[
            ("deviceid", "ann".to_owned()),
            ("location", "34.06,-118.25".to_owned()),
            ("timestamp", ((now_s - 20) * 1000).to_string()),
            ("accuracy", "8".to_owned()),
            ("token", token.clone()),
        ]))
        .await;
    assert_eq!(status, 200);
    let at = position(&s, "ann").await.expect("stored");
    assert_eq!(
        (at["lat"].as_f64(), at["accuracy_m"].as_f64()),
        (Some(34.06), Some(8.0))
    );
    // Traccar Client's JSON, the token in the URL.
    let stamp = time::OffsetDateTime::from_unix_timestamp(now_s - 10)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    let (status, _) = s
        .send(
            s.client
                .post(s.url(&format!("/v1/ingest/osmand?token={token}")))
                .json(&json!({
                    "location": {
                        "timestamp": stamp,
                        "coords": {"latitude": 34.07, "longitude": -118.26, "accuracy": 5, "speed": 0, "heading": 0, "altitude": 0},
                        "is_moving": false, "odometer": 0, "event": "motionchange",
                        "battery": {"level": 1, "is_charging": false},
                        "activity": {"type": "still"}, "extras": {}
                    },
                    "device_id": "ann"
                })),
        )
        .await;
    assert_eq!(status, 200);
    let at = position(&s, "ann").await.expect("stored");
    assert_eq!(at["ts"].as_i64(), Some((now_s - 10) * 1000));
    // A fix the device marks invalid is taken and not stored; a bad one names its field.
    let (status, _) = s
        .send(s.client.get(s.url(&format!(
            "/v1/ingest/osmand?id=ann&lat=1&lon=1&valid=false&token={token}"
        ))))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        position(&s, "ann").await.expect("kept")["lat"].as_f64(),
        Some(34.07)
    );
    let (status, body) = s
        .send(s.client.get(s.url(&format!(
            "/v1/ingest/osmand?id=ann&lat=north&lon=1&token={token}"
        ))))
        .await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().expect("detail").starts_with("lat"));
}

#[tokio::test]
async fn a_device_past_its_rate_is_told_when_to_retry() {
    let s = server_with(|c| c.device_rate = 1).await;
    let (_, token) = device(&s, "ann", "phone").await;
    let url = |i: i64| {
        s.url(&format!(
            "/v1/ingest/osmand?id=ann&lat=1&lon=2&timestamp={}&token={token}",
            s.now() / 1000 - 100 + i
        ))
    };
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response = s.client.get(url(i)).send().await.expect("answers");
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..2], [200, 200], "a burst of twice the rate");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}
