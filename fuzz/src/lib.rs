//! What the fuzz targets share: a server in process (the real router over an engine that
//! keeps no data directory, with a few POIs, travellers and a fence in it) that a target
//! sends requests to, and the rule every answer must keep: no 500, whatever the bytes.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use proxima::clock::ManualClock;
use proxima::engine::{Engine, EngineConfig, LiveConfig};
use proxima::fences::{Fence, FenceKind};
use proxima::geometry::LatLon;
use proxima::geometry::area::Area;
use proxima::pois::{CursorKey, Poi};
use proxima::server::{self, App, AppState, Limits};
use proxima::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};

/// The clock every fuzzed server reads.
pub const NOW_MS: i64 = 1_800_000_000_000;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

/// An engine with nothing in it and no data directory yet.
pub fn engine() -> Engine {
    Engine::new(EngineConfig {
        cursor_key: CursorKey::from_secret(b"fuzz"),
        clock: Arc::new(ManualClock::new(NOW_MS)),
        travellers: TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    })
}

/// A server's router over a fresh engine holding a little of everything.
pub fn app() -> App {
    let engine = engine();
    for i in 0..20 {
        let poi = Poi::new(
            format!("p{i}"),
            60.0 + f64::from(i) * 0.001,
            24.9,
            format!("POI {i}"),
            if i % 2 == 0 { "cafe" } else { "museum" }.into(),
            Default::default(),
            Some(f64::from(i % 10)),
        )
        .expect("a valid POI");
        let _ = engine.upsert_poi(poi).expect("stored");
        let update = PositionUpdate::new(
            format!("t{i}"),
            60.0,
            24.9 + f64::from(i) * 0.001,
            NOW_MS - 1000,
            None,
            None,
        )
        .expect("a valid report");
        let _ = engine.update_position(update).expect("applied");
    }
    let public = Sharing::new(Visibility::Public, vec![]).expect("valid");
    let _ = engine.set_sharing("t0", public).expect("shared");
    let area = Area::circle(
        LatLon {
            lat: 60.0,
            lon: 24.9,
        },
        500.0,
    )
    .expect("valid");
    let fence = Fence::new(
        "f".into(),
        "open".into(),
        Some("t0".into()),
        FenceKind::Static(area),
    )
    .expect("valid");
    let _ = engine.put_fence(fence, true).expect("put");
    let state = AppState::from(server::Shared {
        engine: Arc::new(engine),
        ready: Arc::new(AtomicBool::new(true)),
        limits: Limits {
            max_body_bytes: 1 << 20,
            max_import_bytes: 1 << 24,
            max_batch_bytes: 1 << 22,
            request_timeout: std::time::Duration::from_secs(5),
            max_area_vertices: 10_000,
            max_fences_per_stream: 100,
            max_watch_snapshot: 1_000,
            max_subscribers: 1_000,
            max_clock_skew_ms: 86_400_000,
            map_frame: std::time::Duration::from_millis(250),
        },
        tmp_dir: std::env::temp_dir(),
        keys: None,
        tokens: None,
        started: std::time::Instant::now(),
        streams: Arc::new(server::sse::StreamSlots::new(64)),
        maps: Arc::new(server::sse::StreamSlots::new(8)),
        imports: server::imports::Imports::new(2).expect("an import pool"),
        idempotency: server::idempotency::IdempotencyWindow::new(
            server::idempotency::WindowConfig {
                keep: std::time::Duration::from_secs(60),
                max_bytes: 1 << 20,
            },
        ),
        replicator: Arc::default(),
        link_rate: server::link_rate::LinkRate::new(std::num::NonZeroU32::MAX),
        device_rate: server::link_rate::DeviceRate::new(std::num::NonZeroU32::MAX),
        friends_rate: server::link_rate::DeviceRate::once_per(server::FRIENDS_EVERY),
        stopping: tokio_util::sync::CancellationToken::new(),
        ui: None,
    });
    server::router(state)
}

/// A router shared by the targets that only read.
pub static SHARED: LazyLock<App> = LazyLock::new(app);

/// Sends `request` to `app` and returns its status, failing the run on any 500: a fuzzed
/// request may be refused, never crash the handler.
pub fn send(app: &App, request: Request<Body>) -> u16 {
    let response = RUNTIME
        .block_on(app.clone().oneshot(request))
        .expect("the router never fails");
    let status = response.status().as_u16();
    assert_ne!(status, 500, "a fuzzed request got a 500");
    status
}

/// For targets whose code catches panics of a foreign parser on purpose (the OSM reader):
/// libFuzzer's panic hook aborts on any panic, caught or not, so it is replaced by a quiet
/// one. A panic that escapes the target still fails the run: libfuzzer-sys aborts on it.
pub fn tolerate_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
