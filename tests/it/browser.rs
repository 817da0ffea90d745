//! The map viewer in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`), against the real server.
//!
//! WebDriver is spoken here with `reqwest` directly: it is a handful of JSON calls to a
//! local chromedriver, and the WebDriver crates' only transports need OpenSSL headers or
//! aws-lc's build tools, which a fresh machine with only the Rust toolchain lacks.
//!
//! Without `chromedriver` on the `PATH` the tests print that they were skipped, unless
//! `PROXIMA_REQUIRE_BROWSER=1` (set by `.ci/run`), which makes that a failure.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestServer;

/// One browser at a time: a headless Chromium takes a core of this 2-core machine to
/// start, and six at once made each too slow to answer within the waits.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver process and one browser session in it.
struct Browser {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or `None` (skipped) when there is none.
    async fn start(test: &str) -> Option<Self> {
        let Some(driver) = which("chromedriver") else {
            assert!(
                std::env::var("PROXIMA_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "PROXIMA_REQUIRE_BROWSER=1 but chromedriver is not on the PATH"
            );
            // Written to the process's stderr directly: the test harness captures
            // `eprintln!`, which would make the skip a silent pass.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            // Its own process group, so that the browsers it starts go with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(status) = r.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("a profile dir");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1200,800",
                format!("--user-data-dir={}", profile.path().display()),
            ]},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("a session")
            .json()
            .await
            .expect("JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Some(Self {
            _turn: turn,
            driver: child,
            base,
            session,
            http,
            _profile: profile,
        })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Opens `s`'s viewer and waits until it is interactive; returns after how many ms of
    /// the navigation it was.
    async fn open_viewer(&self, s: &TestServer) -> Value {
        self.open(&s.url("/ui/")).await;
        self.wait_for(
            "the page to be ready",
            "return window.proximaReadyMs || null;",
            json!([]),
        )
        .await
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Polls `script` until it returns something other than null or false (bounded: 20 s).
    async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.run(script, args.clone()).await;
            if !value.is_null() && value != false {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The browser console's messages of level SEVERE since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let log = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        log.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a screenshot of the page under `target/viewer-screenshots/`.
    async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let png = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/viewer-screenshots");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("write");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session, which closes Chromium (it leaves chromedriver's process group,
        // so killing that would not). Plain blocking HTTP: Drop cannot await, and this runs
        // on panics too.
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                // The answer comes once the browser has closed; chromedriver may keep the
                // connection open after it, so read up to the end of the answer only.
                let mut answer = Vec::new();
                let mut chunk = [0u8; 1024];
                while let Ok(n @ 1..) = stream.read(&mut chunk) {
                    answer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&answer);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_string)
                            })
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
            }
        }
        // chromedriver and every Chromium process it started (they share its group).
        // (`--`: a negative pid is a process group, not an option.)
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

#[tokio::test]
async fn a_nearby_query_made_in_the_page_lists_what_the_api_answers() {
    let Some(browser) =
        Browser::start("a_nearby_query_made_in_the_page_lists_what_the_api_answers").await
    else {
        return;
    };
    let s = TestServer::start().await;
    for i in 0..30 {
        let lat = 60.1699 + f64::from(i % 6) * 0.0007;
        let lon = 24.9384 + f64::from(i / 6) * 0.0011;
        let category = if i % 3 == 0 { "museum" } else { "cafe" };
        s.put_poi(&format!("poi-{i:02}"), lat, lon, category, None)
            .await;
    }
    let ready_ms = browser.open_viewer(&s).await;
    eprintln!("the viewer was interactive {ready_ms} ms after navigation started");
    browser
        .run(
            "window.proxima.map.fire('click', {latlng: L.latLng(arguments[0], arguments[1])});",
            json!([60.1710, 24.9400]),
        )
        .await;
    let listed = browser
        .wait_for(
            "the results",
            "const ids = [...document.querySelectorAll('#results li')].map(li => li.dataset.id);
             return ids.length ? ids : null;",
            json!([]),
        )
        .await;
    let (status, body) = s
        .get("/v1/pois/nearby?lat=60.171000&lon=24.940000&limit=20&radius_m=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed,
        json!(TestServer::ids(&body)),
        "the page lists what the API answers, in order"
    );
    browser.screenshot("nearby").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_error_shows_the_problems_detail() {
    let Some(browser) = Browser::start("an_error_shows_the_problems_detail").await else {
        return;
    };
    let s = TestServer::start().await;
    browser.open_viewer(&s).await;
    browser
        .run(
            "document.getElementById('radius').value = '-5';
             window.proxima.map.fire('click', {latlng: L.latLng(60.17, 24.94)});",
            json!([]),
        )
        .await;
    let shown = browser
        .wait_for(
            "the error",
            "const e = document.getElementById('error'); return e.hidden ? null : e.textContent;",
            json!([]),
        )
        .await;
    assert!(
        shown
            .as_str()
            .unwrap_or("")
            .starts_with("radius_m: must be from 0"),
        "{shown}"
    );
    browser.screenshot("error").await;
}

#[tokio::test]
async fn a_position_posted_to_the_api_moves_the_travellers_marker() {
    let Some(browser) =
        Browser::start("a_position_posted_to_the_api_moves_the_travellers_marker").await
    else {
        return;
    };
    let s = TestServer::start().await;
    share_publicly(&s, "walker").await;
    let at = |lat: f64, lon: f64, ts: i64| json!({"lat": lat, "lon": lon, "ts": ts});
    let now = s.now();
    let (status, _) = s
        .put_json("/v1/travellers/walker/position", &at(60.1699, 24.9384, now))
        .await;
    assert_eq!(status, 200);
    browser.open_viewer(&s).await;
    browser.run("window.proxima.watch();", json!([])).await;
    let marker = "const e = window.proxima.live.get('walker');
                  if (!e) return null;
                  const p = e.marker.getLatLng();
                  return Math.abs(p.lat - arguments[0]) < 1e-6 && Math.abs(p.lng - arguments[1]) < 1e-6;";
    browser
        .wait_for("the walker's marker", marker, json!([60.1699, 24.9384]))
        .await;
    let (status, _) = s
        .put_json(
            "/v1/travellers/walker/position",
            &at(60.1720, 24.9450, now + 1),
        )
        .await;
    assert_eq!(status, 200);
    browser
        .wait_for("the marker to move", marker, json!([60.1720, 24.9450]))
        .await;
    let trail = browser
        .run(
            "return window.proxima.live.get('walker').trail.getLatLngs().length;",
            json!([]),
        )
        .await;
    assert_eq!(trail, 2, "the trail holds where it was and where it is");
    browser.screenshot("live").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_fence_drawn_in_the_page_logs_its_enter() {
    let Some(browser) = Browser::start("a_fence_drawn_in_the_page_logs_its_enter").await else {
        return;
    };
    let s = TestServer::start().await;
    share_publicly(&s, "walker").await;
    let now = s.now();
    let at = |lat: f64, lon: f64, ts: i64| json!({"lat": lat, "lon": lon, "ts": ts});
    let (status, _) = s
        .put_json("/v1/travellers/walker/position", &at(60.18, 24.90, now))
        .await;
    assert_eq!(status, 200);
    browser.open_viewer(&s).await;
    // Through the page's own controls: a 150 m circle called "hotel", as "mum".
    browser
        .run(
            "document.getElementById('fence-id').value = 'hotel';
             document.getElementById('fence-viewer').value = 'mum';
             document.getElementById('fence-radius').value = '150';
             document.getElementById('fence-circle').click();
             window.proxima.map.fire('click', {latlng: L.latLng(60.1699, 24.9384)});",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the fence in the list",
            "return document.querySelector('#fences li[data-id=\"hotel\"]') !== null;",
            json!([]),
        )
        .await;
    let fence = s
        .state
        .engine
        .fence("hotel")
        .expect("the page stored the fence");
    assert_eq!(fence.viewer.as_deref(), Some("mum"));
    // The walker walks in, once the page has listed the fence (it streams from there on):
    // the page's log says so.
    browser
        .wait_for(
            "the page to follow the fence",
            "return window.proximaFollowing === 'hotel';",
            json!([]),
        )
        .await;
    let (status, _) = s
        .put_json(
            "/v1/travellers/walker/position",
            &at(60.1700, 24.9385, now + 1),
        )
        .await;
    assert_eq!(status, 200);
    let logged = browser
        .wait_for(
            "the enter in the log",
            "const li = document.querySelector('#fence-log li[data-kind=\"enter\"]');
             return li ? li.textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        logged
            .as_str()
            .unwrap_or("")
            .starts_with("enter walker · hotel"),
        "{logged}"
    );
    browser.screenshot("fence").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}

#[tokio::test]
async fn with_a_read_only_key_a_write_shows_the_refusal() {
    let Some(browser) = Browser::start("with_a_read_only_key_a_write_shows_the_refusal").await
    else {
        return;
    };
    const READER: &str = "browser-reader-key-0123456789";
    let s = TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(&keys, format!("{READER} read\n")).expect("keys");
        c.keys = Some(keys);
    })
    .await;
    browser.open_viewer(&s).await;
    browser
        .run(
            "const key = document.getElementById('key');
             key.value = arguments[0];
             key.dispatchEvent(new Event('change'));
             document.getElementById('fence-id').value = 'hotel';
             document.getElementById('fence-viewer').value = 'mum';
             document.getElementById('fence-circle').click();
             window.proxima.map.fire('click', {latlng: L.latLng(60.17, 24.94)});",
            json!([READER]),
        )
        .await;
    let shown = browser
        .wait_for(
            "the refusal",
            "const e = document.getElementById('error');
             return e.hidden || !e.textContent.includes('scope') ? null : e.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(shown, "authorization: this key lacks the write scope");
    assert!(
        s.state.engine.fence("hotel").is_none(),
        "nothing was stored"
    );
    // The key went in a header, never in a URL the browser fetched.
    let urls = browser
        .run(
            "return performance.getEntriesByType('resource').map(e => e.name).join(' ');",
            json!([]),
        )
        .await;
    assert!(!urls.as_str().unwrap_or("").contains(READER), "{urls}");
    browser.screenshot("read-only-key").await;
}

#[tokio::test]
async fn a_polygon_drawn_in_the_page_lists_what_the_api_finds_within_it() {
    let Some(browser) =
        Browser::start("a_polygon_drawn_in_the_page_lists_what_the_api_finds_within_it").await
    else {
        return;
    };
    let s = TestServer::start().await;
    for i in 0..16 {
        let lat = 60.168 + f64::from(i % 4) * 0.001;
        let lon = 24.936 + f64::from(i / 4) * 0.002;
        s.put_poi(&format!("poi-{i:02}"), lat, lon, "cafe", None)
            .await;
    }
    browser.open_viewer(&s).await;
    let corners = [[24.9355, 60.1675], [24.9405, 60.1675], [24.9405, 60.1705]];
    browser
        .run(
            "document.getElementById('within').click();
             for (const [lon, lat] of arguments[0]) {
               window.proxima.map.fire('click', {latlng: L.latLng(lat, lon)});
             }
             document.getElementById('fence-finish').click();",
            json!([corners]),
        )
        .await;
    let listed = browser
        .wait_for(
            "the results",
            "const ids = [...document.querySelectorAll('#results li')].map(li => li.dataset.id);
             return ids.length ? ids : null;",
            json!([]),
        )
        .await;
    let mut ring: Vec<[f64; 2]> = corners.to_vec();
    ring.push(corners[0]);
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/pois/within"))
                .json(&json!({"area": {"type": "Polygon", "coordinates": [ring]}, "limit": 100})),
        )
        .await;
    assert_eq!(status, 200);
    let api = TestServer::ids(&body);
    assert!(
        !api.is_empty() && api.len() < 16,
        "the triangle holds some: {api:?}"
    );
    assert_eq!(listed, json!(api));
    browser.screenshot("within").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}

/// Makes traveller `id` public, through the API.
async fn share_publicly(s: &TestServer, id: &str) {
    let (status, _) = s
        .put_json(
            &format!("/v1/travellers/{id}/sharing"),
            &json!({"visibility": "public"}),
        )
        .await;
    assert_eq!(status, 200);
}
