//! Query strings, cursors and `Last-Event-ID` through the real router: the first byte picks
//! a route, the rest is its query string (or, for the event stream, the header).
#![no_main]

use axum::body::Body;
use axum::http::Request;

const ROUTES: &[&str] = &[
    "/v1/pois/nearby",
    "/v1/pois/within",
    "/v1/travellers/nearby",
    "/v1/travellers/t0",
    "/v1/travellers/t0/trail",
    "/v1/fences",
    "/v1/fences/f/inside",
    "/v1/heatmap",
    "/v1/travellers/watch",
    "/v1/events",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let choice = usize::from(pick) % (ROUTES.len() + 1);
    let request = match ROUTES.get(choice) {
        Some(route) => match Request::get(format!("{route}?{text}")).body(Body::empty()) {
            Ok(request) => request,
            Err(_) => return, // not a URI: hyper refuses it before any route
        },
        // Last-Event-ID on a real fence's stream.
        None => match Request::get("/v1/events?fence=f")
            .header("last-event-id", text)
            .body(Body::empty())
        {
            Ok(request) => request,
            Err(_) => return, // not a header value: never reaches the server
        },
    };
    proxima_fuzz::send(&proxima_fuzz::SHARED, request);
});
