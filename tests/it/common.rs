//! Starts a real server on an ephemeral port for a test and stops it when dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use proxima::clock::{Clock, ManualClock};

use proxima::config::ServeConfig;
use serde_json::Value;

/// A running server and a client for it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: proxima::server::AppState,
    /// The server's clock: tests move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with no data, defaults otherwise.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServeConfig::for_tests(dir.path().join("data"));
        adjust(&mut config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let started = proxima::start_with_clock(config, clock.clone(), async {
            let _ = stopped.await;
        })
        .await
        .expect("server starts");
        let server = Self {
            addr: started.addr,
            client: reqwest::Client::new(),
            state: started.state,
            clock,
            stop: Some(stop),
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    /// Polls `/readyz` until it answers 200 (bounded: 30 s).
    pub async fn wait_ready(&self) {
        for _ in 0..600 {
            if self.get("/readyz").await.0 == 200 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("server not ready within 30 s");
    }

    /// The server's "now", Unix ms.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request and returns the status and the body parsed as JSON (Null if empty).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let content_type = header(&response, "content-type").unwrap_or("").to_string();
        let bytes = response.bytes().await.expect("body");
        if status >= 400 {
            assert_eq!(
                content_type, "application/problem+json",
                "errors are problem+json"
            );
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else if content_type.contains("json") {
            serde_json::from_slice(&bytes).expect("a JSON content type has a JSON body")
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        };
        if status >= 400 {
            assert_eq!(body["status"], status, "problem status matches: {body}");
            for field in ["type", "title", "detail"] {
                assert!(body[field].is_string(), "problem has {field}: {body}");
            }
        }
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.client.delete(self.url(path))).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    pub async fn post_body(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).body(body)).await
    }

    /// Posts position reports as one NDJSON batch (`POST /v1/positions`).
    pub async fn post_positions(&self, reports: &[Value]) -> (u16, Value) {
        let body: String = reports.iter().map(|r| format!("{r}\n")).collect();
        let request = self
            .client
            .post(self.url("/v1/positions"))
            .header("content-type", "application/x-ndjson")
            .body(body);
        self.send(request).await
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text")
    }

    /// Creates a POI, asserting success.
    pub async fn put_poi(&self, id: &str, lat: f64, lon: f64, category: &str, rating: Option<f64>) {
        let mut body = serde_json::json!({"lat": lat, "lon": lon, "name": format!("name of {id}"), "category": category});
        if let Some(r) = rating {
            body["rating"] = r.into();
        }
        let (status, _) = self.put_json(&format!("/v1/pois/{id}"), &body).await;
        assert!(status == 201 || status == 200, "PUT {id}: {status}");
    }

    /// The ids of a results page.
    pub fn ids(body: &Value) -> Vec<String> {
        body["results"]
            .as_array()
            .expect("results array")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response header's value, if present and text.
pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// proptest's configuration for `cases` cases, saving new failure seeds beside the test's
/// own file, not at the crate's top level.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..proptest::test_runner::Config::default()
    }
}

/// One Server-Sent Event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// Its `id:`, if it had one.
    pub id: Option<String>,
    /// Its `event:` kind.
    pub event: String,
    /// Its `data:` line, parsed as JSON.
    pub data: Value,
}

/// A `text/event-stream` answer, read event by event.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

impl SseStream {
    /// Sends `request` and, if the answer is a 200 event stream, returns it; otherwise the
    /// status and the problem body.
    pub async fn open(request: reqwest::RequestBuilder) -> Result<Self, (u16, Value)> {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.json().await.unwrap_or(Value::Null);
            return Err((status, body));
        }
        assert_eq!(header(&response, "content-type"), Some("text/event-stream"));
        Ok(Self {
            response,
            buffer: String::new(),
            ended: false,
        })
    }

    /// The next event, waiting at most `wait`; `None` if none came or the stream ended.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_sse(&block) {
                    return Some(event);
                }
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// Every event until `quiet` passes without one (or the stream ends).
    pub async fn drain(&mut self, quiet: std::time::Duration) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.next(quiet).await {
            events.push(e);
        }
        events
    }

    /// Whether the server ended the stream (after everything it sent was read).
    pub fn ended(&self) -> bool {
        self.ended && !self.buffer.contains("\n\n")
    }
}

/// An event block (comments alone are keep-alives: `None`).
fn parse_sse(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim_start().to_string());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim_start().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    let event = event?;
    Some(SseEvent {
        id,
        event,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

/// An engine with no data directory yet, its clock at 1,800,000,000,000 ms, trails of 4.
pub fn bare_engine() -> proxima::engine::Engine {
    use proxima::engine::{Engine, EngineConfig, LiveConfig};
    Engine::new(EngineConfig {
        cursor_key: proxima::pois::CursorKey::random(),
        clock: Arc::new(ManualClock::new(1_800_000_000_000)),
        travellers: proxima::travellers::TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    })
}

/// A café at (1, 1) with id `id` and nothing else.
pub fn plain_cafe(id: &str) -> proxima::pois::Poi {
    proxima::pois::Poi::new(
        id.into(),
        1.0,
        1.0,
        String::new(),
        "cafe".into(),
        std::collections::BTreeMap::new(),
        None,
    )
    .expect("valid")
}

/// The path of an outside program a test needs (on the `PATH`, or in `/usr/sbin`, where
/// Debian puts some). Missing, it prints that `test` was skipped, straight to stderr (the
/// harness captures `eprintln!`, which would make the skip a silent pass), and gives
/// `None`; unless the environment variable `require` is `1` (`.ci/run` sets it), which
/// makes a missing program a failure.
pub fn outside_program(
    test: &str,
    program: &str,
    require: &str,
    install: &str,
) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|path| path.is_file())
        })
        .or_else(|| {
            let sbin = std::path::Path::new("/usr/sbin").join(program);
            sbin.is_file().then_some(sbin)
        });
    if found.is_none() {
        assert!(
            std::env::var(require).as_deref() != Ok("1"),
            "{require}=1 but {program} is not installed"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: {program} is not installed ({install})"
        );
    }
    found
}

/// A port free on 127.0.0.1 when asked, for an outside program (`nats-server`,
/// `chromedriver`) to bind: something else may take it meanwhile, so the cluster tests start
/// `nats-server` again on fresh ports when it ends before listening.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
