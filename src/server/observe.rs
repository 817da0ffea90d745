//! What the people on call see: Prometheus metrics, with every request counted and timed
//! by route, method and status, and gauges of the state, rendered for `/metrics`.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use hashbrown::HashMap;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::engine::Engine;

/// Latency buckets, seconds: 50 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// The process-wide Prometheus recorder (the `metrics` facade has one global recorder).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests embedding several servers share
        // this one); then this handle just renders nothing of its own.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Drains the recorder's histogram samples into their buckets every `every`, forever.
///
/// The exporter keeps every sample recorded since the last drain and drains only when told:
/// its own HTTP listener, which Proxima does not use, would run this task itself. Without
/// it a server that nobody scraped grew without bound: 26 MB of RSS after 1.3M `healthz`
/// requests, 2.5 GB an hour at 35,000 requests a second (and 0.3-0.7 MB with it).
pub async fn upkeep_metrics(every: std::time::Duration) {
    let handle = prometheus();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// Counts a request by route, method and status, and records how long it took.
pub fn record(route: &str, method: &'static str, status: StatusCode, took: Duration) {
    RouteMetrics::with(route, method, status, |m| {
        m.requests.increment(1);
        m.duration.record(took.as_secs_f64());
    });
}

/// The method as a metric label: one of the standard methods, or `other`. A client may
/// send any token as a method, and each would otherwise become a new series kept forever.
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// The metric handles of one route, method and status.
struct RouteMetrics {
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

thread_local! {
    /// Each worker thread's handles, by route: building the two metric keys for every
    /// request (label strings, a key, a registry lookup each) was 7 % of a `healthz`
    /// request's instructions under callgrind. The handles share their values through the
    /// recorder, so per-thread copies count together. Routes are the router's patterns,
    /// methods and statuses bounded sets, so this stays small.
    static ROUTE_METRICS: RefCell<HashMap<Box<str>, Vec<RouteMetrics>, foldhash::fast::FixedState>> =
        RefCell::new(HashMap::default());
}

impl RouteMetrics {
    /// Calls `f` with the handles of `route`, `method` and `status`, registering them on
    /// the first request that has them.
    fn with(route: &str, method: &'static str, status: StatusCode, f: impl FnOnce(&Self)) {
        ROUTE_METRICS.with_borrow_mut(|by_route| {
            let known = by_route.entry_ref(route).or_default();
            let at = match known
                .iter()
                .position(|m| m.method == method && m.status == status)
            {
                Some(at) => at,
                None => {
                    known.push(Self::register(route, method, status));
                    known.len() - 1
                }
            };
            f(&known[at]);
        });
    }

    fn register(route: &str, method: &'static str, status: StatusCode) -> Self {
        let route = route.to_string();
        Self {
            method,
            status,
            requests: metrics::counter!("proxima_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.as_str().to_string()),
            duration: metrics::histogram!("proxima_http_request_duration_seconds", "route" => route, "method" => method),
        }
    }
}

/// Every metric in the Prometheus text format, with the gauges that describe the state
/// (rather than events) set from `engine` first.
pub fn render(engine: &Engine) -> String {
    metrics::gauge!("proxima_pois").set(engine.poi_count() as f64);
    metrics::gauge!("proxima_travellers").set(engine.traveller_count() as f64);
    metrics::gauge!("proxima_trips").set(engine.trip_count() as f64);
    metrics::gauge!("proxima_route_points_pending").set(engine.route_points_pending() as f64);
    let (route_bytes, compactions) = engine.route_store_file();
    metrics::gauge!("proxima_route_store_bytes").set(route_bytes as f64);
    metrics::gauge!("proxima_route_store_compactions").set(compactions as f64);
    let backlog = engine.route_backlog();
    metrics::gauge!("proxima_route_fresh_pieces").set(backlog.fresh_pieces as f64);
    metrics::gauge!("proxima_route_store_behind").set(f64::from(u8::from(backlog.behind)));
    metrics::counter!("proxima_route_writes_refused_total").absolute(backlog.refused);
    metrics::counter!("proxima_route_reader_settlings_total")
        .absolute(engine.route_reader_settlings());
    if let Some(wal) = engine.wal_stats() {
        metrics::gauge!("proxima_wal_bytes").set(wal.bytes as f64);
        metrics::gauge!("proxima_wal_records").set(wal.records as f64);
        metrics::gauge!("proxima_wal_fsyncs").set(wal.fsyncs as f64);
        metrics::gauge!("proxima_wal_fsync_seconds").set(wal.fsync_micros as f64 / 1e6);
    }
    if let Some(snapshot) = engine.last_snapshot() {
        let age = (engine.now_ms() - snapshot.at_ms).max(0) as f64 / 1000.0;
        metrics::gauge!("proxima_snapshot_age_seconds").set(age);
        metrics::gauge!("proxima_snapshot_duration_seconds").set(snapshot.millis as f64 / 1000.0);
        metrics::gauge!("proxima_snapshot_bytes").set(snapshot.bytes as f64);
    }
    let handle = prometheus();
    handle.run_upkeep();
    handle.render()
}
