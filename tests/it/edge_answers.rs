//! What the HTTP edge answers to requests a hostile or careless client sends: oversized
//! bodies and headers, bad encodings, unparsable requests, batches of nothing but bad
//! records, and one address trying to hold every connection. Each is sent the way such a
//! client sends it (raw bytes where a client library would refuse), and held to the clear
//! answer a client should get.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::TestServer;

/// Sends `request` on a fresh connection and returns everything the server answered
/// before it closed the connection (bounded: 10 s).
async fn raw(server: &TestServer, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) if !out.is_empty() => break,
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status and problem body of a raw answer.
fn problem_of(answer: &str) -> (u16, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["status"], status, "{answer}");
    (status, body)
}

async fn log_records(s: &TestServer) -> u64 {
    let (status, stats) = s.get("/v1/stats").await;
    assert_eq!(status, 200);
    stats["wal"]["records"]
        .as_u64()
        .expect("a count of log records")
}

#[tokio::test]
async fn a_json_body_declared_over_the_limit_is_413_at_once() {
    let s = TestServer::start().await;
    for path in [
        "/v1/travellers/x/position",
        "/v1/pois/x",
        "/v1/travellers/x/sharing",
    ] {
        let request = format!(
            "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n{{\"lat\":1,\"lon\":1,\"ts\":1}}"
        );
        let started = Instant::now();
        let answer = raw(&s, request.as_bytes()).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: answered at once"
        );
        let (status, body) = problem_of(&answer);
        assert_eq!(status, 413, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_csv_header_line_over_a_mib_is_refused_not_held() {
    let s = TestServer::start().await;
    let header = format!("id,lat,lon,name,category,{}\n", "t".repeat(3 << 20));
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/pois/import?format=csv"))
                .header("content-type", "text/csv")
                .body(header),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("at most 1048576 bytes"),
        "{body}"
    );
    assert_eq!(s.state.engine.poi_count(), 0);
}

#[tokio::test]
async fn invalid_utf8_in_a_query_parameter_is_400_not_a_replacement_character() {
    let s = TestServer::start().await;
    let (status, _) = s
        .put_json(
            "/v1/travellers/a\u{FFFD}/position",
            &json!({"lat": 60.0, "lon": 24.0, "ts": s.now()}),
        )
        .await;
    assert_eq!(status, 200, "the traveller `a\\u{{FFFD}}` exists");
    for bad in ["a%FF", "a%FE", "a%C0"] {
        let (status, body) = s
            .get(&format!(
                "/v1/travellers/nearby?lat=60&lon=24&radius_m=1000&viewer={bad}"
            ))
            .await;
        assert_eq!(status, 400, "viewer={bad}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with("viewer: "),
            "{body}"
        );
    }
    // The same bytes in a name, or in an unknown parameter, are refused too.
    let (status, _) = s.get("/v1/pois/nearby?lat=60&lon=24&x%FF=1").await;
    assert_eq!(status, 400);
    // Percent-encoded UTF-8 and `+` still decode.
    let (status, body) = s.get("/v1/travellers/a%EF%BF%BD?viewer=a%EF%BF%BD").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_overlong_unknown_path_is_414_and_no_answer_echoes_a_whole_path() {
    let s = TestServer::start().await;
    let long = format!("/{}", "a".repeat(9000));
    let (status, body) = s.get(&long).await;
    assert_eq!(status, 414, "{body}");
    assert!(body.to_string().len() < 1000, "{body}");
    let (status, body) = s.send(s.client.patch(s.url(&long))).await;
    assert_eq!(status, 414, "{body}");
    // Under the limit, a 404 still names the path, but only its start.
    let long = format!("/{}", "b".repeat(5000));
    let (status, body) = s.get(&long).await;
    assert_eq!(status, 404);
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("no route for /bbb") && detail.len() < 400,
        "{detail}"
    );
}

#[tokio::test]
async fn a_json_syntax_error_says_line_column_and_path() {
    let s = TestServer::start().await;
    let (status, body) = s
        .send(
            s.client
                .put(s.url("/v1/pois/p"))
                .header("content-type", "application/json")
                .body("{\"lat\": 60.1,\n \"lon\": 24.9,\n \"tags\": {\"a\": }}"),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "body: JSON syntax error at line 3, column 16, in `tags.a`: expected value"
    );
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_problem_json() {
    let s = TestServer::start_with(|c| c.max_header_bytes = 8192).await;
    for request in [
        &b"POST /v1/positions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello"[..],
        &b"POST /v1/positions HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\nhello"[..],
        &b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n"[..],
        &b"GET /healthz HTTP/9.9 extra\r\n\r\n"[..],
    ] {
        let (status, body) = problem_of(&raw(&s, request).await);
        assert_eq!(status, 400, "{body}");
    }
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let (status, body) = problem_of(&raw(&s, big.as_bytes()).await);
    assert_eq!(status, 431, "{body}");
    // A good request on the same server is untouched.
    let answer = raw(
        &s,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
}

#[tokio::test]
async fn a_batch_or_import_with_every_record_rejected_writes_no_log_record() {
    let s = TestServer::start().await;
    let before = log_records(&s).await;
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/positions"))
                .header("content-type", "application/x-ndjson")
                .body("{\"id\":\"a\",\"lat\":91,\"lon\":0,\"ts\":1}\n{\"id\":\"\",\"lat\":1,\"lon\":0,\"ts\":1}\n"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 0, "{body}");
    for mode in ["upsert", "replace"] {
        let (status, body) = s
            .send(
                s.client
                    .post(s.url(&format!("/v1/pois/import?format=csv&mode={mode}")))
                    .header("content-type", "text/csv")
                    .body("id,lat,lon,name,category\nbad,95,0,B,cafe\n"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["imported"].as_u64(), body["skipped"].as_u64()),
            (Some(0), Some(1))
        );
    }
    assert_eq!(log_records(&s).await, before, "nothing was logged");
    // A good record is still logged.
    s.put_poi("p", 1.0, 1.0, "cafe", None).await;
    assert_eq!(log_records(&s).await, before + 1);
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection_slot() {
    let s = TestServer::start_with(|c| {
        c.max_connections = 100;
        c.max_connections_per_address = None;
    })
    .await;
    // 105 sockets from 127.0.0.1, as the probe opened them: a quarter of the slots at most
    // are theirs; the rest are refused 429 at once.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..105 {
        let mut stream = tokio::net::TcpStream::connect(s.addr)
            .await
            .expect("connect");
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
                refused += 1;
            }
            _ => held.push(stream),
        }
    }
    // A quarter of --max-connections, less the idle keep-alive connection the test's own
    // client may still hold from waiting for /readyz.
    assert!((24..=25).contains(&held.len()), "{} held", held.len());
    assert_eq!(held.len() + refused, 105);
    // Slots are left for everyone else: the server has 75 free, and a held one, once
    // closed, is free again for the same address.
    assert_eq!(s.state.engine.poi_count(), 0);
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = raw(
            &s,
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
