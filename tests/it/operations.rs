//! Operating safely: keys and scopes on every route, per-key rate limits, limits, metrics,
//! stats, request ids, and the refusal to serve openly beyond this machine.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TestServer, header};

const READER: &str = "reader-key-0123456789";
const WRITER: &str = "writer-key-0123456789";
const ADMIN: &str = "admin-key-0123456789";
const SLOW: &str = "slow-key-01234567890";

async fn with_keys() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys");
    let text =
        format!("# test keys\n{READER} read\n{WRITER} read,write\n{ADMIN} admin\n{SLOW} read 5\n");
    std::fs::write(&path, text).expect("write keys");
    let server = TestServer::start_with(|c| c.keys = Some(path)).await;
    (server, dir)
}

fn as_key(s: &TestServer, method: &str, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
    let request = s
        .client
        .request(method.to_uppercase().parse().expect("method"), s.url(path));
    match key {
        Some(k) => request.bearer_auth(k),
        None => request,
    }
}

#[tokio::test]
async fn no_route_in_the_spec_answers_without_a_key() {
    let (s, _dir) = with_keys().await;
    let spec: Value = serde_json::from_str(proxima::server::OPENAPI_JSON).expect("spec");
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let concrete = path.replace("{id}", "some-id");
        for method in ["get", "put", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let (status, _body) = s.send(as_key(&s, method, &concrete, None)).await;
            let open = path == "/healthz" || path == "/readyz";
            if open {
                assert_eq!(status, 200, "{method} {path} needs no key: {_body}");
            } else if path.starts_with("/v1/shared/") {
                // A share link's token is the key: a made-up one opens nothing.
                assert_eq!(status, 404, "{method} {path} with no link: {_body}");
            } else {
                assert_eq!(status, 401, "{method} {path} without a key");
                let (status, _) = s
                    .send(as_key(
                        &s,
                        method,
                        &concrete,
                        Some("not-a-key-at-all-really"),
                    ))
                    .await;
                assert_eq!(status, 401, "{method} {path} with a wrong key");
            }
        }
    }
    let response = as_key(&s, "GET", "/v1/stats", None)
        .send()
        .await
        .expect("send");
    assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn each_scope_opens_exactly_its_routes() {
    let (s, _dir) = with_keys().await;
    let poi = json!({"lat": 1, "lon": 1, "name": "x", "category": "cafe"});
    let put = |key| as_key(&s, "PUT", "/v1/pois/p1", Some(key)).json(&poi);
    assert_eq!(s.send(put(READER)).await.0, 403, "read cannot write");
    assert_eq!(s.send(put(WRITER)).await.0, 201, "write can write");
    let status = async |method, path, key| s.send(as_key(&s, method, path, Some(key))).await.0;
    assert_eq!(status("GET", "/v1/pois/p1", READER).await, 200);
    assert_eq!(
        status("GET", "/v1/pois/p1", ADMIN).await,
        403,
        "admin alone cannot read"
    );
    assert_eq!(status("POST", "/v1/admin/snapshot", WRITER).await, 403);
    assert_eq!(status("POST", "/v1/admin/snapshot", ADMIN).await, 200);
    let (status, body) = s.send(put(READER)).await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().expect("detail").contains("write"),
        "{body}"
    );
}

#[tokio::test]
async fn a_rate_limited_key_gets_429_then_recovers_and_never_slows_another() {
    let (s, _dir) = with_keys().await;
    let mut limited = None;
    for _ in 0..20 {
        let response = as_key(&s, "GET", "/v1/stats", Some(SLOW))
            .send()
            .await
            .expect("send");
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("a 5/s key sees a 429 within a burst of 20");
    assert_eq!(header(&response, "retry-after"), Some("1"));
    assert_eq!(header(&response, "ratelimit-limit"), Some("5"));
    assert_eq!(header(&response, "ratelimit-remaining"), Some("0"));
    assert!(header(&response, "ratelimit-reset").is_some());
    // Another key is not slowed.
    for _ in 0..20 {
        assert_eq!(
            s.send(as_key(&s, "GET", "/v1/stats", Some(READER))).await.0,
            200
        );
    }
    // The slow key recovers as its bucket refills (a token every 200 ms): wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let status = as_key(&s, "GET", "/v1/stats", Some(SLOW))
            .send()
            .await
            .expect("send")
            .status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the key did not recover within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counter(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn made_up_methods_share_one_metric_label() {
    let s = TestServer::start().await;
    for method in ["FETCH", "XYZZY", "GET2"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a token");
        let response = s
            .client
            .request(method, s.url("/healthz"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 405);
    }
    let text = s.metrics().await;
    assert!(!text.contains("XYZZY") && !text.contains("GET2"), "{text}");
    let other = "proxima_http_requests_total{route=\"/healthz\",method=\"other\",status=\"405\"}";
    assert!(counter(&text, other) >= 3.0, "{text}");
}

#[tokio::test]
async fn metrics_move_after_requests() {
    let s = TestServer::start().await;
    let route =
        "proxima_http_requests_total{route=\"/v1/pois/nearby\",method=\"GET\",status=\"200\"}";
    let before = counter(&s.metrics().await, route);
    for _ in 0..3 {
        assert_eq!(s.get("/v1/pois/nearby?lat=1&lon=1").await.0, 200);
    }
    s.put_poi("m1", 1.0, 1.0, "cafe", None).await;
    let line = json!({"id": "t1", "lat": 1, "lon": 1, "ts": s.now()});
    s.send(
        s.client
            .post(s.url("/v1/positions"))
            .body(format!("{line}\n")),
    )
    .await;
    let text = s.metrics().await;
    assert!(
        counter(&text, route) >= before + 3.0,
        "request counter moved"
    );
    assert!(
        text.contains("proxima_http_request_duration_seconds_bucket"),
        "latency histogram present"
    );
    assert!(counter(&text, "proxima_position_updates_applied_total") >= 1.0);
    assert!(counter(&text, "proxima_pois ") >= 1.0);
    assert!(counter(&text, "proxima_wal_bytes ") > 0.0);
    let (status, stats) = s.get("/v1/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        (stats["pois"].as_u64(), stats["travellers"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(stats["wal"]["bytes"].as_u64().expect("wal bytes") > 0);
}

#[tokio::test]
async fn requests_carry_an_id_and_overlong_urls_are_refused() {
    let s = TestServer::start().await;
    let response = s
        .client
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(header(&response, "x-request-id"), Some("abc-123"));
    let generated = s.client.get(s.url("/healthz")).send().await.expect("send");
    assert!(generated.headers().contains_key("x-request-id"));
    let long = format!("/v1/pois/nearby?lat=1&lon=1&category={}", "a".repeat(9000));
    assert_eq!(s.get(&long).await.0, 414);
}

#[test]
fn an_open_server_refuses_a_non_loopback_address_unless_insecure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxima"))
        .args([
            "serve",
            "--no-sample",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--keys") && stderr.contains("--insecure"),
        "{stderr}"
    );
}

/// Reads from a raw connection until the server closes it or `within` passes; returns what
/// arrived.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_connection_beyond_the_limit_is_told_503_and_later_ones_get_in() {
    let s = TestServer::start_with(|c| {
        c.max_connections = 2;
        c.max_connections_per_address = Some(10);
    })
    .await;
    let held = [
        tokio::net::TcpStream::connect(s.addr)
            .await
            .expect("connect"),
        tokio::net::TcpStream::connect(s.addr)
            .await
            .expect("connect"),
    ];
    let mut third = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let answer = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("application/problem+json") && answer.contains("\"status\":503"),
        "{answer}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s
        .client
        .get(s.url("/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "no connection got in after the held ones closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start_with(|c| c.header_read_timeout = 1).await;
    let mut slow = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after about the 1 s header timeout"
    );
}

#[tokio::test]
async fn oversized_headers_and_slow_requests_are_refused() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start_with(|c| {
        c.max_header_bytes = 8192;
        c.request_timeout = 1;
    })
    .await;
    let response = s
        .client
        .get(s.url("/healthz"))
        .header("x-big", "a".repeat(20_000))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 431);
    // A batch whose body trickles in for longer than the request timeout.
    let mut stream = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = "POST /v1/positions HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\ncontent-length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(b"{\"id\":").await.expect("write");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("timed-out"), "{answer}");
}
