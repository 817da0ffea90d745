//! The viewer's live parts in a real browser: travellers' markers moving, fences drawn and
//! their events logged, a read-only key's refused write, and 10,000 travellers in view.

use serde_json::{Value, json};

use super::Browser;
use crate::common::TestServer;

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
                  const [lat, lng] = e.at;
                  return Math.abs(lat - arguments[0]) < 1e-6 && Math.abs(lng - arguments[1]) < 1e-6;";
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
            "return window.proxima.live.get('walker').trail.length;",
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
        .fence(&proxima::fences::FenceKey::new("open", "hotel"))
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
    assert!(s.state.engine.fence_count() == 0, "nothing was stored");
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

/// Posts one position for each of `ids`, as a batch, asserting they were accepted.
async fn post_positions(s: &TestServer, positions: &[(String, f64, f64)], ts: i64) {
    let batch: Vec<_> = positions
        .iter()
        .map(|(id, lat, lon)| json!({"id": id, "lat": lat, "lon": lon, "ts": ts}))
        .collect();
    let (status, body) = s.post_positions(&batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], positions.len(), "{body}");
}

/// 10,000 public travellers in view, a tenth of them moving every 200 ms: every one is on
/// the map, the last moves land, and the page's frame times are printed (measured, not
/// asserted: a timed test on a shared 2-core machine would be a flaky one).
#[tokio::test]
async fn ten_thousand_travellers_in_view_are_all_on_the_map_and_keep_moving() {
    let Some(browser) =
        Browser::start("ten_thousand_travellers_in_view_are_all_on_the_map_and_keep_moving").await
    else {
        return;
    };
    const N: usize = 10_000;
    let s = TestServer::start().await;
    let public =
        proxima::travellers::Sharing::new(proxima::travellers::Visibility::Public, Vec::new())
            .expect("a valid setting");
    // Spread over ~11 km by 11 km of Helsinki: all inside the page's first view.
    // Each traveller starts somewhere in the box and moves up to ~150 m a report, as a
    // car in town between reports does.
    let place = |i: usize, round: usize| {
        // Two hashes of i (splitmix64's finaliser) spread the starts evenly over the box.
        let hash = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        };
        let step = |k: usize| ((i * 31 + k * 17) % 11) as f64 / 5.0 - 1.0; // -1 to 1
        let (dlat, dlon) = (1..=round).fold((0.0, 0.0), |(a, b), k| {
            (a + 0.0013 * step(k), b + 0.0027 * step(k + 5))
        });
        (
            60.12 + 0.10 * hash(2 * i as u64) + dlat,
            24.84 + 0.20 * hash(2 * i as u64 + 1) + dlon,
        )
    };
    let ids: Vec<String> = (0..N).map(|i| format!("t{i:05}")).collect();
    for id in &ids {
        let _ = s
            .state
            .engine
            .set_sharing(id, public.clone())
            .expect("shared");
    }
    let now = s.now();
    let first: Vec<(String, f64, f64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (lat, lon) = place(i, 0);
            (id.clone(), lat, lon)
        })
        .collect();
    for chunk in first.chunks(1000) {
        post_positions(&s, chunk, now).await;
    }
    browser.open_viewer(&s).await;
    let opened = std::time::Instant::now();
    browser.run("window.proxima.watch();", json!([])).await;
    browser
        .wait_for(
            "every traveller on the map",
            "return window.proxima.live.size === arguments[0];",
            json!([N]),
        )
        .await;
    let all_shown = opened.elapsed();
    browser
        .run(
            "window.proximaFrames = [];
             let last = performance.now();
             const tick = (t) => {
               window.proximaFrames.push(t - last);
               last = t;
               if (window.proximaFrames.length < 100000) requestAnimationFrame(tick);
             };
             requestAnimationFrame(tick);",
            json!([]),
        )
        .await;
    let moving = std::time::Instant::now();
    let rounds = 25;
    let mut last_moved = Vec::new();
    for round in 1..=rounds {
        let start = (round - 1) % 10 * (N / 10);
        last_moved = (start..start + N / 10)
            .map(|i| {
                let (lat, lon) = place(i, round);
                (ids[i].clone(), lat, lon)
            })
            .collect();
        post_positions(&s, &last_moved, now + round as i64).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let moved_for = moving.elapsed();
    let frames = browser
        .run(
            "const f = window.proximaFrames.slice(1);
             window.proximaFrames = [1e9]; // stops the recorder's growth
             return f;",
            json!([]),
        )
        .await;
    let mut frames: Vec<f64> = frames
        .as_array()
        .expect("frame times")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    frames.sort_by(f64::total_cmp);
    assert!(!frames.is_empty(), "the page drew frames while they moved");
    let at = |q: f64| frames[((frames.len() - 1) as f64 * q).round() as usize];
    let over_50 = frames.iter().filter(|&&f| f > 50.0).count();
    eprintln!(
        "10,000 travellers in view, 1,000 moving up to 150 m every 200 ms for {:.1} s: all shown {} ms after the stream opened; {} frames ({:.1} a second), frame time median {:.1} ms, p95 {:.1} ms, max {:.1} ms, {} over 50 ms",
        moved_for.as_secs_f64(),
        all_shown.as_millis(),
        frames.len(),
        frames.len() as f64 / moved_for.as_secs_f64(),
        at(0.5),
        at(0.95),
        at(1.0),
        over_50,
    );
    for (id, lat, lon) in last_moved.iter().step_by(97) {
        browser
            .wait_for(
                "the last moves to land",
                "const e = window.proxima.live.get(arguments[0]);
                 return e && Math.abs(e.at[0] - arguments[1]) < 1e-6 && Math.abs(e.at[1] - arguments[2]) < 1e-6;",
                json!([id, lat, lon]),
            )
            .await;
    }
    let shown = browser
        .run("return window.proxima.live.size;", json!([]))
        .await;
    assert_eq!(shown, N, "every traveller stays on the map");
    browser.screenshot("ten-thousand-travellers").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
