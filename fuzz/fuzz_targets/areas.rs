//! GeoJSON areas through the real router: the first byte picks a polygon query on POIs or
//! travellers, or a fence; the rest is the area's JSON.
#![no_main]

use axum::body::Body;
use axum::http::Request;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, area)) = data.split_first() else {
        return;
    };
    let Ok(area) = std::str::from_utf8(area) else {
        return;
    };
    let (method, path, body) = match pick % 3 {
        0 => ("POST", "/v1/pois/within", format!("{{\"area\":{area}}}")),
        1 => (
            "POST",
            "/v1/travellers/within",
            format!("{{\"area\":{area}}}"),
        ),
        _ => (
            "PUT",
            "/v1/fences/fuzzed",
            format!("{{\"area\":{area},\"viewer\":\"t0\"}}"),
        ),
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a request");
    proxima_fuzz::send(&proxima_fuzz::app(), request);
});
