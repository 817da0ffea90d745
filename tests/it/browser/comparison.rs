//! Measurements for choosing the viewer's map library, not tests: run by
//! `scripts/maplibre-comparison.sh`, which puts MapLibre GL where the server embeds it.

use serde_json::json;

use super::Browser;
use crate::common::TestServer;

/// Frame times of 10,000 points, a tenth moving every 200 ms, drawn by MapLibre GL.
#[tokio::test]
#[ignore = "a measurement: scripts/maplibre-comparison.sh runs it"]
async fn maplibre_comparison() {
    let Some(browser) = Browser::start("maplibre_comparison").await else {
        return;
    };
    let s = TestServer::start().await;
    assert_eq!(
        s.get("/ui/maplibre-comparison/maplibre-gl.js").await.0,
        200,
        "run scripts/maplibre-comparison.sh, which fetches MapLibre GL"
    );
    browser
        .open(&s.url("/ui/maplibre-comparison/index.html"))
        .await;
    let ready = browser
        .wait_for(
            "MapLibre to load",
            "return window.xpReady || window.xpError || null;",
            json!([]),
        )
        .await;
    assert_eq!(ready, true, "MapLibre failed: {ready}");
    browser.run("window.xpStart();", json!([])).await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let frames = browser
        .run(
            "const f = window.frames.slice(1); f.sort((a, b) => a - b);
             return [f.length, f[f.length >> 1], f[Math.floor(f.length * 0.95)], f[f.length - 1]];",
            json!([]),
        )
        .await;
    let renderer = browser
        .run(
            "const g = document.createElement('canvas').getContext('webgl2');
             const d = g && g.getExtension('WEBGL_debug_renderer_info');
             return d ? g.getParameter(d.UNMASKED_RENDERER_WEBGL) : 'unknown';",
            json!([]),
        )
        .await;
    eprintln!(
        "maplibre: 10,000 points, 1,000 moving every 200 ms for 6 s: [frames, median, p95, max ms] = {frames}; WebGL: {renderer}"
    );
    browser.screenshot("maplibre-comparison").await;
}
