//! Position batches through the real router: the first byte picks NDJSON or a JSON array,
//! the rest is the body.
#![no_main]

use axum::body::Body;
use axum::http::Request;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let content_type = if kind % 2 == 0 {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let request = Request::post("/v1/positions")
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    // A fresh server each time: what a batch stores must not pile up across runs.
    proxima_fuzz::send(&proxima_fuzz::app(), request);
});
