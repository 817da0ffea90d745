//! Traveller tokens over real HTTP: what a refused token gets (expired, not yet valid,
//! another audience or issuer, `none`, HS/RS confusion, a forged signature), and what a
//! valid one may do on every route, against a service key on the same server.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::{SseStream, TestServer};

const AUDIENCE: &str = "proxima-test";
const ISSUER: &str = "https://auth.example.test";
const SERVICE_KEY: &str = "service-key-0123456789";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

fn hs_secret() -> Vec<u8> {
    let mut secret = read("hs256-secret.txt");
    while secret.last() == Some(&b'\n') {
        secret.pop();
    }
    secret
}

/// Seconds since the epoch by the wall clock (tokens are checked against it).
fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Claims of a valid token for `sub` with `scope`, changed by `adjust`.
fn claims(sub: &str, scope: &str, adjust: impl FnOnce(&mut Value)) -> Value {
    let mut claims = json!({
        "sub": sub,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": now_s() + 600,
        "iat": now_s(),
        "scope": scope,
    });
    adjust(&mut claims);
    claims
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("signs")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&hs_secret()).expect("a secret"),
        claims,
    )
}

fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&read("rs256-private.pem")).expect("RSA key");
    sign(Algorithm::RS256, &key, claims)
}

/// A server with a service key and tokens signed by the HS256 secret or the JWKS's RSA key.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(&keys, format!("{SERVICE_KEY} read,write,admin\n")).expect("keys");
        c.keys = Some(keys);
        c.jwt_hs256_secret_file = Some(fixture("hs256-secret.txt"));
        c.jwks_file = Some(fixture("jwks.json"));
        c.jwt_audience = Some(AUDIENCE.into());
        c.jwt_issuer = Some(ISSUER.into());
    })
    .await
}

/// Sends `request` with `bearer` and returns the status and the JSON body.
async fn call(s: &TestServer, request: reqwest::RequestBuilder, bearer: &str) -> (u16, Value) {
    s.send(request.bearer_auth(bearer)).await
}

async fn service(s: &TestServer, request: reqwest::RequestBuilder) -> (u16, Value) {
    call(s, request, SERVICE_KEY).await
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or("")
}

#[tokio::test]
async fn refused_tokens_are_401_saying_why_and_never_reach_a_handler() {
    let s = server().await;
    let nearby = || s.client.get(s.url("/v1/pois/nearby?lat=60&lon=24"));
    let (status, _) = call(&s, nearby(), &hs256(&claims("ann", "read", |_| {}))).await;
    assert_eq!(status, 200, "a valid HS256 token");
    let mut kid = Header::new(Algorithm::RS256);
    kid.kid = Some("test-rs".into());
    let rsa = EncodingKey::from_rsa_pem(&read("rs256-private.pem")).expect("RSA key");
    let by_kid = jsonwebtoken::encode(&kid, &claims("ann", "read", |_| {}), &rsa).expect("signs");
    assert_eq!(
        call(&s, nearby(), &by_kid).await.0,
        200,
        "a valid RS256 token from the JWKS"
    );

    let past = now_s() - 3600;
    let future = now_s() + 3600;
    let forged = {
        let token = hs256(&claims("ann", "read", |_| {}));
        let (rest, signature) = token.rsplit_once('.').expect("three parts");
        let mut signature = signature.as_bytes().to_vec();
        signature[3] = if signature[3] == b'A' { b'B' } else { b'A' };
        format!("{rest}.{}", String::from_utf8(signature).expect("ascii"))
    };
    let other_sub = {
        // ann's header and signature over bob's claims.
        let ann = hs256(&claims("ann", "read", |_| {}));
        let bob = hs256(&claims("bob", "read", |_| {}));
        let (ann_head, rest) = ann.split_once('.').expect("parts");
        let (_, ann_sig) = rest.split_once('.').expect("parts");
        let bob_claims = bob.split('.').nth(1).expect("parts");
        format!("{ann_head}.{bob_claims}.{ann_sig}")
    };
    let none = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(claims("ann", "read", |_| {}).to_string());
        format!("{head}.{body}.")
    };
    // HS256 signed with the RSA public key's PEM as the secret: the classic confusion, on a
    // server whose RSA key must only ever verify RS256.
    let confused_server = TestServer::start_with(|c| {
        c.jwt_public_key_file = Some(fixture("rs256-public.pem"));
        c.jwt_audience = Some(AUDIENCE.into());
        c.jwt_issuer = Some(ISSUER.into());
    })
    .await;
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&read("rs256-public.pem")).expect("a secret"),
        &claims("ann", "read", |_| {}),
    );
    let (status, body) = call(
        &confused_server,
        confused_server
            .client
            .get(confused_server.url("/v1/pois/nearby?lat=60&lon=24")),
        &confused,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(detail(&body).contains("algorithm"), "{body}");
    let rs_on_that_server = rs256(&claims("ann", "read", |_| {}));
    let (status, _) = call(
        &confused_server,
        confused_server
            .client
            .get(confused_server.url("/v1/pois/nearby?lat=60&lon=24")),
        &rs_on_that_server,
    )
    .await;
    assert_eq!(status, 200, "the same server takes a real RS256 token");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            hs256(&claims("ann", "read", |c| c["exp"] = past.into())),
            "expired",
        ),
        (
            "not yet valid",
            hs256(&claims("ann", "read", |c| c["nbf"] = future.into())),
            "not valid yet",
        ),
        (
            "another audience",
            hs256(&claims("ann", "read", |c| c["aud"] = "other".into())),
            "audience",
        ),
        (
            "another issuer",
            hs256(&claims("ann", "read", |c| {
                c["iss"] = "https://evil.test".into()
            })),
            "issuer",
        ),
        (
            "no expiry",
            hs256(&claims("ann", "read", |c| {
                c.as_object_mut().expect("object").remove("exp");
            })),
            "exp",
        ),
        ("a forged signature", forged, "signature"),
        ("claims swapped under a signature", other_sub, "signature"),
        ("alg none", none, "token"),
        (
            "RS256 without a kid on a server with only a JWKS",
            rs256(&claims("ann", "read", |_| {})),
            "algorithm",
        ),
        (
            "a sub that is not a traveller id",
            hs256(&claims("a/b", "read", |_| {})),
            "sub",
        ),
        ("not a JWT", "a.b.c".to_string(), "well-formed"),
    ];
    for (what, token, says) in cases {
        let (status, body) = call(&s, nearby(), &token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(detail(&body).contains(says), "{what}: {body}");
        assert!(
            !detail(&body).contains(&token),
            "{what}: the token is not echoed"
        );
    }
}

#[tokio::test]
async fn a_token_changes_only_its_own_traveller_and_reads_as_it() {
    let s = server().await;
    let ann = hs256(&claims("ann", "read write", |_| {}));
    let now = s.now();
    // The back end (service key) sets bob up, sharing with ann, and carol, private.
    for (id, visibility, viewers) in [
        ("bob", "friends", json!(["ann"])),
        ("carol", "private", json!([])),
    ] {
        let (status, _) = service(
            &s,
            s.client
                .put(s.url(&format!("/v1/travellers/{id}/sharing")))
                .json(&json!({"visibility": visibility, "viewers": viewers})),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = service(
            &s,
            s.client
                .put(s.url(&format!("/v1/travellers/{id}/position")))
                .json(&json!({"lat": 60.17, "lon": 24.94, "ts": now})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let put = |id: &str| {
        s.client
            .put(s.url(&format!("/v1/travellers/{id}/position")))
            .json(&json!({"lat": 60.171, "lon": 24.941, "ts": now + 1}))
    };
    assert_eq!(
        call(&s, put("ann"), &ann).await,
        (200, json!({"applied": true}))
    );
    // Another traveller: refused the same way whether it exists or not, and unchanged.
    let (bob_status, bob_body) = call(&s, put("bob"), &ann).await;
    let (ghost_status, ghost_body) = call(&s, put("ghost"), &ann).await;
    assert_eq!((bob_status, ghost_status), (403, 403));
    assert_eq!(bob_body["detail"], ghost_body["detail"]);
    for (path, method) in [
        ("/v1/travellers/bob", reqwest::Method::DELETE),
        ("/v1/travellers/ghost", reqwest::Method::DELETE),
    ] {
        let (status, body) = call(&s, s.client.request(method, s.url(path)), &ann).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    for id in ["bob", "ghost"] {
        let (status, _) = call(
            &s,
            s.client
                .put(s.url(&format!("/v1/travellers/{id}/sharing")))
                .json(&json!({"visibility": "public"})),
            &ann,
        )
        .await;
        assert_eq!(status, 403);
    }
    let bob = s
        .state
        .engine
        .traveller("bob", Some("bob"))
        .expect("bob is still there");
    assert_eq!(bob.at.position.lat, 60.17, "bob did not move");
    // A batch with one report for someone else is refused whole.
    let batch = |ids: &[&str]| {
        let body: String = ids
            .iter()
            .map(|id| {
                format!(
                    "{{\"id\":\"{id}\",\"lat\":60.2,\"lon\":24.9,\"ts\":{}}}\n",
                    now + 2
                )
            })
            .collect();
        s.client
            .post(s.url("/v1/positions"))
            .header("content-type", "application/x-ndjson")
            .body(body)
    };
    let (status, _) = call(&s, batch(&["ann", "bob"]), &ann).await;
    assert_eq!(status, 403);
    assert_eq!(
        s.state
            .engine
            .traveller("ann", Some("ann"))
            .expect("ann")
            .at
            .position
            .lat,
        60.171,
        "nothing of the refused batch was applied"
    );
    let (status, body) = call(&s, batch(&["ann"]), &ann).await;
    assert_eq!((status, &body["accepted"]), (200, &json!(1)));

    // Reads are as ann: bob shares with ann, carol does not.
    let nearby = |viewer: &str| {
        s.client.get(s.url(&format!(
            "/v1/travellers/nearby?lat=60.17&lon=24.94&radius_m=5000{viewer}"
        )))
    };
    let (status, body) = call(&s, nearby(""), &ann).await;
    assert_eq!(status, 200);
    let ids = TestServer::ids(&body);
    assert!(
        ids.iter().any(|i| i == "bob")
            && ids.iter().any(|i| i == "ann")
            && !ids.iter().any(|i| i == "carol"),
        "{ids:?}"
    );
    assert_eq!(call(&s, nearby("&viewer=ann"), &ann).await.0, 200);
    assert_eq!(call(&s, nearby("&viewer=carol"), &ann).await.0, 403);
    assert_eq!(
        call(&s, s.client.get(s.url("/v1/travellers/bob")), &ann)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&s, s.client.get(s.url("/v1/travellers/carol")), &ann)
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &s,
            s.client.get(s.url("/v1/travellers/bob?viewer=bob")),
            &ann
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&s, s.client.get(s.url("/v1/travellers/bob/trail")), &ann)
            .await
            .0,
        200
    );
    let area = json!({"type": "Circle", "center": [24.94, 60.17], "radius_m": 3000});
    let within = |viewer: Value| {
        s.client
            .post(s.url("/v1/travellers/within"))
            .json(&json!({"area": area, "viewer": viewer}))
    };
    assert_eq!(call(&s, within(Value::Null), &ann).await.0, 200);
    assert_eq!(call(&s, within(json!("carol")), &ann).await.0, 403);
    let watch = |viewer: &str| {
        s.client
            .get(s.url(&format!("/v1/travellers/watch?bbox=24,60,25,61{viewer}")))
            .bearer_auth(&ann)
    };
    assert!(SseStream::open(watch("")).await.is_ok());
    assert_eq!(
        SseStream::open(watch("&viewer=carol"))
            .await
            .err()
            .map(|e| e.0),
        Some(403)
    );

    // POIs: read, never written; operations: never.
    let read_only = [
        ("GET", "/v1/pois/nearby?lat=60&lon=24", 200),
        ("GET", "/v1/pois/within?bbox=24,60,25,61", 200),
        ("GET", "/v1/pois/nope", 404),
        ("GET", "/openapi.json", 200),
        ("GET", "/v1/heatmap?bbox=24,60,25,61&resolution=5", 200),
        ("PUT", "/v1/pois/p", 403),
        ("DELETE", "/v1/pois/p", 403),
        ("POST", "/v1/pois/import?format=csv", 403),
        ("POST", "/v1/admin/snapshot", 403),
        ("GET", "/metrics", 403),
        ("GET", "/v1/stats", 403),
    ];
    for (method, path, expected) in read_only {
        let request = s
            .client
            .request(method.parse().expect("method"), s.url(path))
            .header("content-type", "application/json")
            .body(r#"{"lat":1,"lon":1,"name":"n","category":"cafe"}"#);
        let response = request.bearer_auth(&ann).send().await.expect("sent");
        assert_eq!(response.status().as_u16(), expected, "{method} {path}");
    }
    let (status, _) = call(
        &s,
        s.client
            .post(s.url("/v1/pois/within"))
            .json(&json!({"area": area})),
        &ann,
    )
    .await;
    assert_eq!(status, 200);
    // The service key is unchanged: any traveller, any viewer.
    assert_eq!(service(&s, put("bob")).await.0, 200);
    assert_eq!(service(&s, nearby("&viewer=carol")).await.0, 200);
}

#[tokio::test]
async fn a_token_has_only_its_own_fences_and_streams() {
    let s = server().await;
    let ann = hs256(&claims("ann", "read write", |_| {}));
    let area = json!({"type": "Circle", "center": [24.94, 60.17], "radius_m": 300});
    // bob's fence, put by the back end.
    let (status, _) = service(
        &s,
        s.client
            .put(s.url("/v1/fences/bobs"))
            .json(&json!({"area": area, "viewer": "bob"})),
    )
    .await;
    assert_eq!(status, 201);
    // ann's, without a viewer: hers.
    let (status, body) = call(
        &s,
        s.client
            .put(s.url("/v1/fences/anns"))
            .json(&json!({"area": area})),
        &ann,
    )
    .await;
    assert_eq!((status, &body["viewer"]), (201, &json!("ann")));
    for viewer in [json!("bob"), Value::Null] {
        let (status, body) = call(
            &s,
            s.client
                .put(s.url("/v1/fences/other"))
                .json(&json!({"area": area, "viewer": viewer})),
            &ann,
        )
        .await;
        assert_eq!(status, 403, "{body}");
    }
    // The back end's `bobs` is not ann's: to her the id is free, and it names a fence of
    // her own, which neither answers nor changes the other.
    for path in ["/v1/fences/bobs", "/v1/fences/bobs/inside"] {
        assert_eq!(
            call(&s, s.client.get(s.url(path)), &ann).await.0,
            404,
            "{path}"
        );
    }
    assert_eq!(
        call(&s, s.client.delete(s.url("/v1/fences/bobs")), &ann)
            .await
            .0,
        404
    );
    let (status, body) = call(
        &s,
        s.client
            .put(s.url("/v1/fences/bobs"))
            .json(&json!({"area": area})),
        &ann,
    )
    .await;
    assert_eq!(
        (status, &body["viewer"]),
        (201, &json!("ann")),
        "her own bobs"
    );
    let (status, body) = service(&s, s.client.get(s.url("/v1/fences/bobs"))).await;
    assert_eq!(
        (status, &body["viewer"]),
        (200, &json!("bob")),
        "the back end's, untouched"
    );
    let (status, body) = call(&s, s.client.get(s.url("/v1/fences")), &ann).await;
    assert_eq!(status, 200);
    assert_eq!(TestServer::ids(&body), ["anns", "bobs"]);
    let (status, body) = service(&s, s.client.get(s.url("/v1/fences"))).await;
    assert_eq!(
        (status, TestServer::ids(&body)),
        (200, vec!["bobs".to_string()])
    );
    let stream = |path: &str| s.client.get(s.url(path)).bearer_auth(&ann);
    assert!(
        SseStream::open(stream("/v1/fences/anns/events"))
            .await
            .is_ok()
    );
    assert!(
        SseStream::open(stream("/v1/events?fence=anns"))
            .await
            .is_ok()
    );
    for path in [
        "/v1/fences/nobodys/events",
        "/v1/events?fence=anns&fence=nobodys",
    ] {
        assert_eq!(
            SseStream::open(stream(path)).await.err().map(|e| e.0),
            Some(404),
            "{path}"
        );
    }
    // Another owner's fences are named with `owner=` by an admin-scope key only.
    assert_eq!(
        call(
            &s,
            s.client.get(s.url("/v1/fences?owner=traveller:ann")),
            &ann
        )
        .await
        .0,
        403
    );
    for id in ["anns", "bobs"] {
        assert_eq!(
            call(
                &s,
                s.client.delete(s.url(&format!("/v1/fences/{id}"))),
                &ann
            )
            .await
            .0,
            204
        );
    }
    let (status, _) = service(&s, s.client.get(s.url("/v1/fences/bobs"))).await;
    assert_eq!(status, 200, "still there");
}

#[tokio::test]
async fn a_tokens_scope_is_what_it_may_do() {
    let s = server().await;
    let reader = hs256(&claims("ann", "read", |_| {}));
    let none = hs256(&claims("ann", "", |_| {}));
    let position = || {
        s.client
            .put(s.url("/v1/travellers/ann/position"))
            .json(&json!({"lat": 1.0, "lon": 1.0, "ts": 1}))
    };
    let (status, body) = call(&s, position(), &reader).await;
    assert_eq!(status, 403);
    assert!(detail(&body).contains("lacks write"), "{body}");
    let (status, _) = call(
        &s,
        s.client.get(s.url("/v1/pois/nearby?lat=1&lon=1")),
        &none,
    )
    .await;
    assert_eq!(status, 403, "no scope, nothing");
}

#[tokio::test]
async fn a_public_key_verifies_its_own_algorithm_only() {
    for (public, private, alg) in [
        ("rs256-public.pem", "rs256-private.pem", Algorithm::RS256),
        ("es256-public.pem", "es256-private.pem", Algorithm::ES256),
        ("eddsa-public.pem", "eddsa-private.pem", Algorithm::EdDSA),
    ] {
        let s = TestServer::start_with(|c| {
            c.jwt_public_key_file = Some(fixture(public));
            c.jwt_audience = Some(AUDIENCE.into());
            c.jwt_issuer = Some(ISSUER.into());
        })
        .await;
        let pem = read(private);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .expect("a private key");
        let nearby = || s.client.get(s.url("/v1/pois/nearby?lat=1&lon=1"));
        let good = sign(alg, &key, &claims("ann", "read", |_| {}));
        assert_eq!(call(&s, nearby(), &good).await.0, 200, "{alg:?}");
        let (status, _) = call(&s, nearby(), &hs256(&claims("ann", "read", |_| {}))).await;
        assert_eq!(status, 401, "{alg:?}: no HS256 secret is configured");
        let (status, _) = call(&s, nearby(), "not-a-key-and-not-a-token").await;
        assert_eq!(status, 401);
    }
}

/// A traveller's trips are its own: another traveller's token cannot make, change, read,
/// follow, share or delete them, and gets the same answer as for a trip that does not
/// exist; the owner's token manages them, and a follower's token reads as the follower.
#[tokio::test]
async fn a_token_has_only_its_own_trips() {
    let s = server().await;
    let ann = hs256(&claims("ann", "read write", |_| {}));
    let bob = hs256(&claims("bob", "read write", |_| {}));
    let mum = hs256(&claims("mum", "read", |_| {}));
    let trip = json!({"traveller": "ann", "title": "Lapland", "started_at": s.now() - 1000});
    let put = |body: &Value| s.client.put(s.url("/v1/trips/lap")).json(body);
    let (status, body) = call(&s, put(&trip), &bob).await;
    assert_eq!(status, 403, "bob makes no trip for ann: {body}");
    assert_eq!(call(&s, put(&trip), &ann).await.0, 201);
    let pos = json!({"lat": 68.0, "lon": 25.0, "ts": s.now()});
    let report = s
        .client
        .put(s.url("/v1/travellers/ann/position"))
        .json(&pos);
    assert_eq!(call(&s, report, &ann).await.0, 200);
    // Bob: the same 404 as for a trip that does not exist, on every route.
    let routes: [(reqwest::Method, &str); 8] = [
        (reqwest::Method::GET, "/v1/trips/{}"),
        (reqwest::Method::GET, "/v1/trips/{}/route"),
        (reqwest::Method::GET, "/v1/trips/{}/stays"),
        (reqwest::Method::GET, "/v1/trips/{}/followers"),
        (reqwest::Method::GET, "/v1/trips/{}/links"),
        (reqwest::Method::PUT, "/v1/trips/{}/followers/bob"),
        (reqwest::Method::POST, "/v1/trips/{}/links"),
        (reqwest::Method::DELETE, "/v1/trips/{}"),
    ];
    for (method, path) in routes {
        let request = |id: &str| {
            s.client
                .request(method.clone(), s.url(&path.replace("{}", id)))
                .json(&json!({"expires_at": s.now() + 60_000}))
        };
        let (real, real_body) = call(&s, request("lap"), &bob).await;
        let (missing, missing_body) = call(&s, request("nowhere"), &bob).await;
        assert_eq!((real, missing), (404, 404), "{method} {path}");
        assert_eq!(
            detail(&real_body).replace("lap", "?"),
            detail(&missing_body).replace("nowhere", "?"),
            "{method} {path}: the same words"
        );
    }
    let as_viewer = s.client.get(s.url("/v1/trips/lap?viewer=ann"));
    assert_eq!(call(&s, as_viewer, &bob).await.0, 403, "bob reads as bob");
    // Ann adds mum; mum's token reads the trip and sees ann, who is private.
    let follow = s.client.put(s.url("/v1/trips/lap/followers/mum"));
    assert_eq!(call(&s, follow, &ann).await.0, 204);
    let read = s.client.get(s.url("/v1/trips/lap"));
    assert_eq!(call(&s, read, &mum).await.0, 200);
    let see = s.client.get(s.url("/v1/travellers/ann"));
    assert_eq!(call(&s, see, &mum).await.0, 200);
    let see = s.client.get(s.url("/v1/travellers/ann"));
    assert_eq!(call(&s, see, &bob).await.0, 404);
    // Mum cannot share or change ann's trip.
    let share = s
        .client
        .post(s.url("/v1/trips/lap/links"))
        .json(&json!({"expires_at": s.now() + 60_000}));
    assert_eq!(
        call(&s, share, &mum).await.0,
        403,
        "a read token writes nothing"
    );
    let delete = s.client.delete(s.url("/v1/trips/lap"));
    assert_eq!(call(&s, delete, &ann).await.0, 204);
    let see = s.client.get(s.url("/v1/travellers/ann"));
    assert_eq!(
        call(&s, see, &mum).await.0,
        404,
        "the trip is gone, and its sharing"
    );
}

/// A share link reads its trip, so only a caller that may read makes one: a write-only
/// token (or key) could otherwise make itself a reader of any traveller it may change.
/// The link's token is in the answer once: an `Idempotency-Key` retry makes a second
/// link rather than have the server keep the first one's token to send again. And an id
/// another traveller's trip holds is refused without a word of whose it is.
#[tokio::test]
async fn a_share_link_is_made_only_by_a_reader_and_its_token_is_never_kept() {
    let s = server().await;
    let ann = hs256(&claims("ann", "read write", |_| {}));
    let ann_writes = hs256(&claims("ann", "write", |_| {}));
    let trip = json!({"traveller": "ann", "title": "Lapland", "started_at": s.now() - 1000});
    let put = s.client.put(s.url("/v1/trips/lap")).json(&trip);
    assert_eq!(call(&s, put, &ann).await.0, 201);
    let link = || {
        s.client
            .post(s.url("/v1/trips/lap/links"))
            .json(&json!({"expires_at": s.now() + 60_000}))
    };
    let (status, body) = call(&s, link(), &ann_writes).await;
    assert_eq!(status, 403, "{body}");
    assert!(detail(&body).contains("read scope"), "{body}");
    let links = || s.client.get(s.url("/v1/trips/lap/links"));
    let (_, listed) = call(&s, links(), &ann).await;
    assert_eq!(listed["results"], json!([]), "no link was made");

    let (first, a) = call(&s, link().header("idempotency-key", "k1"), &ann).await;
    let (again, b) = call(&s, link().header("idempotency-key", "k1"), &ann).await;
    assert_eq!((first, again), (201, 201), "{a} {b}");
    let (a, b) = (a["token"].as_str(), b["token"].as_str());
    assert!(
        a.is_some() && b.is_some() && a != b,
        "a second link: {a:?} {b:?}"
    );
    let (_, listed) = call(&s, links(), &ann).await;
    assert_eq!(listed["results"].as_array().map(Vec::len), Some(2));

    let bob = hs256(&claims("bob", "read write", |_| {}));
    let bobs = json!({"traveller": "bob", "title": "Mine", "started_at": s.now() - 1000});
    let (status, body) = call(&s, s.client.put(s.url("/v1/trips/lap")).json(&bobs), &bob).await;
    assert_eq!(status, 409, "{body}");
    let words = detail(&body);
    assert!(
        !words.contains("ann") && !words.contains("another traveller"),
        "{words}"
    );
}
