//! The HTTP edge: routes, wire types, body and parameter limits, problem+json.
//!
//! It holds no index logic: every handler parses its request into typed values and makes one
//! [`Engine`] call. Shutdown is an explicit signal passed in (as in mini-redis): when it fires
//! the listener stops accepting, requests in flight finish, and [`serve`] returns.

mod admission;
pub mod auth;
mod body;
mod consistency;
mod dto;
pub mod idempotency;
pub mod imports;
mod json_writer;
pub mod link_rate;
pub mod listener;
mod malformed;
mod observe;
mod params;
mod positions;
mod problem;
pub mod quota;
mod request_id;
mod response;
mod routes;
pub mod sse;
mod trackers;
pub mod ui;
pub mod work;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};
use tokio::net::TcpListener;

/// The route formats, for tools that write a route as the API would.
pub use dto::{RouteFormatError, route_geojson, route_gpx, route_polylines};
pub use observe::upkeep_metrics;
pub use problem::ApiError;
pub use sse::event_encoder;

use self::routes::{
    devices, fences, ingest, operations, pois, shared, streams, track_imports, travellers, trips,
    zones,
};

use crate::engine::Engine;

/// The OpenAPI 3 description of every route served, checked against the router by tests.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Size limits on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON body, bytes.
    pub max_body_bytes: usize,
    /// Largest import body, bytes (streamed, never buffered whole).
    pub max_import_bytes: u64,
    /// Largest position batch body, bytes.
    pub max_batch_bytes: usize,
    /// Longest a request may take (imports excepted: they stream with an idle timeout).
    pub request_timeout: std::time::Duration,
    /// Most positions an area may have.
    pub max_area_vertices: usize,
    /// Most fences one event stream may follow.
    pub max_fences_per_stream: usize,
    /// Most travellers a live map starts with.
    pub max_watch_snapshot: usize,
    /// Most streams (fence streams and live maps) at once.
    pub max_subscribers: usize,
    /// How far ahead of the server's clock a position's `ts` may be, ms.
    pub max_clock_skew_ms: i64,
    /// How often a live map is sent the changes since its last frame.
    pub map_frame: std::time::Duration,
}

/// How often a tracker device is told its traveller's friends (OwnTracks' answer): the
/// answer is a nearby query (about a quarter of an OwnTracks request's cost, profiled), and
/// an app reporting every second needs its friends no more often than this; its other
/// answers are empty, and it keeps showing what it was told last.
pub const FRIENDS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What every handler can reach: one allocation behind an `Arc`, so that the copy axum
/// makes for every request (and the state layers make again) is one reference count, not
/// a dozen and a cancellation token's lock (5 % of a nearby query's server time, profiled).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    /// The one state.
    pub engine: Arc<Engine>,
    /// Set once startup loading has finished; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
    /// Body limits.
    pub limits: Limits,
    /// Where request bodies are spooled when a reader needs a file.
    pub tmp_dir: std::path::PathBuf,
    /// The API keys (service keys for the app's back end).
    pub keys: Option<Arc<auth::Keys>>,
    /// The keys that sign traveller tokens. With neither keys nor tokens the server is open.
    pub tokens: Option<Arc<auth::Tokens>>,
    /// When the server started (for uptime).
    pub started: std::time::Instant,
    /// Event streams (fence streams and live maps) held open, per owner or, on an open
    /// server, per client address.
    pub streams: Arc<sse::StreamSlots>,
    /// Live maps held open, per owner or client address.
    pub maps: Arc<sse::StreamSlots>,
    /// Where imports run, and how many may.
    pub imports: imports::Imports,
    /// The answers kept for writes sent with an `Idempotency-Key`.
    pub idempotency: idempotency::IdempotencyWindow,
    /// Share-link reads per client address (`--link-rate`).
    pub link_rate: link_rate::LinkRate,
    /// Trackers' reports per device (`--device-rate`).
    pub device_rate: link_rate::DeviceRate,
    /// When each device may next be told its traveller's friends (OwnTracks).
    pub friends_rate: link_rate::DeviceRate,
    /// The map viewer's settings; `None` serves no viewer (`--no-ui`).
    pub ui: Option<ui::UiConfig>,
    /// In a cluster, the stream's replicator, once this node has joined: read-your-writes
    /// waits, idempotent answers kept by any node, and the cluster's stats.
    pub replicator: Arc<std::sync::OnceLock<Arc<crate::cluster::Replicator>>>,
    /// Cancelled when the server begins to stop: event streams end, so that the requests
    /// in flight can finish.
    pub stopping: tokio_util::sync::CancellationToken,
}

impl Shared {
    /// The cluster's replicator, when this server is a cluster node that has joined.
    pub fn replicator(&self) -> Option<&Arc<crate::cluster::Replicator>> {
        self.replicator.get()
    }

    /// The latest position `ts` taken now.
    pub fn horizon(&self) -> positions::Horizon {
        let skew_ms = self.limits.max_clock_skew_ms;
        positions::Horizon {
            latest_ms: self.engine.now_ms().saturating_add(skew_ms),
            skew_ms,
        }
    }
}

/// What the listener serves: every route of the API, each behind admission and counted,
/// and every request with an id.
pub type App = request_id::RequestId<Router>;

/// The router with every route of the API, wrapped as [`App`].
pub fn router(state: AppState) -> App {
    observe::prometheus();
    let router = Router::new()
        .route("/healthz", get(operations::healthz))
        .route("/readyz", get(operations::readyz))
        .route("/openapi.json", get(operations::openapi))
        .route("/metrics", get(operations::metrics))
        .route("/v1/stats", get(operations::stats))
        .route("/v1/pois/nearby", get(pois::nearby))
        .route(
            "/v1/pois/within",
            get(pois::within).merge(write(&state, post(pois::within_area))),
        )
        .route("/v1/pois/import", write(&state, post(pois::import)))
        .route(
            "/v1/pois/{id}",
            get(pois::get_poi).merge(write(&state, put(pois::put_poi).delete(pois::delete_poi))),
        )
        .route(
            "/v1/positions",
            write(&state, post(travellers::post_positions)),
        )
        .route("/v1/travellers/nearby", get(travellers::nearby))
        .route(
            "/v1/travellers/within",
            write(&state, post(travellers::within_area)),
        )
        .route("/v1/travellers/watch", get(streams::watch))
        .route(
            "/v1/travellers/{id}",
            get(travellers::get_traveller)
                .merge(write(&state, delete(travellers::delete_traveller))),
        )
        .route(
            "/v1/travellers/{id}/position",
            write(&state, put(travellers::put_position)),
        )
        .route("/v1/travellers/{id}/trail", get(travellers::trail))
        .route(
            "/v1/travellers/{id}/sharing",
            write(&state, put(travellers::put_sharing)),
        )
        .route("/v1/travellers/{id}/trips", get(trips::traveller_trips))
        .route(
            "/v1/travellers/{id}/devices",
            // Not `write`: an idempotent answer would keep the token in memory.
            get(devices::devices).post(devices::create_device),
        )
        .route(
            "/v1/travellers/{id}/devices/{device}",
            write(&state, delete(devices::revoke_device)),
        )
        .route("/v1/travellers/{id}/privacy-zones", get(zones::zones))
        .route(
            "/v1/travellers/{id}/privacy-zones/{zone}",
            get(zones::get_zone).merge(write(
                &state,
                put(zones::put_zone).delete(zones::delete_zone),
            )),
        )
        .route("/v1/ingest/owntracks", post(ingest::owntracks))
        .route("/v1/ingest/overland", post(ingest::overland))
        .route(
            "/v1/ingest/osmand",
            get(ingest::osmand).post(ingest::osmand),
        )
        .route(
            "/v1/trips/{id}",
            get(trips::get_trip).merge(write(
                &state,
                put(trips::put_trip).delete(trips::delete_trip),
            )),
        )
        .route("/v1/trips/{id}/followers", get(trips::followers))
        .route(
            "/v1/trips/{id}/followers/{viewer}",
            write(
                &state,
                put(trips::put_follower).delete(trips::delete_follower),
            ),
        )
        .route("/v1/trips/{id}/route", get(trips::route))
        .route("/v1/trips/{id}/import", post(track_imports::import))
        .route("/v1/trips/{id}/stays", get(trips::stays))
        .route("/v1/trips/{id}/watch", get(trips::watch))
        .route(
            "/v1/trips/{id}/links",
            // Not `write`: an idempotent answer would keep the link's token, which is
            // stored only hashed, in memory and in a cluster's key-value store.
            get(trips::links).post(trips::create_link),
        )
        .route(
            "/v1/trips/{id}/links/{link}",
            write(&state, delete(trips::revoke_link)),
        )
        .route("/v1/shared/{token}", get(shared::trip))
        .route("/v1/shared/{token}/route", get(shared::route))
        .route("/v1/shared/{token}/stays", get(shared::stays))
        .route("/v1/shared/{token}/watch", get(shared::watch))
        .route("/v1/fences", get(fences::list_fences))
        .route(
            "/v1/fences/{id}",
            get(fences::get_fence).merge(write(
                &state,
                put(fences::put_fence).delete(fences::delete_fence),
            )),
        )
        .route("/v1/fences/{id}/inside", get(fences::inside))
        .route("/v1/fences/{id}/events", get(streams::fence_events))
        .route("/v1/events", get(streams::events))
        .route("/v1/heatmap", get(operations::heatmap))
        .route("/v1/categories", get(pois::categories))
        .route(
            "/v1/admin/snapshot",
            write(&state, post(operations::snapshot)),
        )
        .merge(viewer_routes(state.ui.is_some()))
        .fallback(operations::no_route)
        .method_not_allowed_fallback(operations::wrong_method)
        // Admission also waits for a request's `min_seq` (`consistency`), once it is let in.
        .route_layer(admission::AdmissionLayer::new(state.clone()))
        .with_state(state);
    request_id::RequestId::new(router)
}

/// A route's write methods, answered once per `Idempotency-Key` ([`idempotency`]). Layered
/// on the methods themselves, not the route: a method the route does not serve gets its
/// 405 whatever key it carries.
fn write(state: &AppState, methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::answer,
    ))
}

/// The map viewer's routes, or none (`--no-ui`).
fn viewer_routes(enabled: bool) -> Router<AppState> {
    if !enabled {
        return Router::new();
    }
    ui::prepare();
    Router::new()
        .route("/", get(ui::root))
        .route("/ui", get(ui::root))
        .route("/ui/", get(ui::index))
        .route("/ui/config.json", get(ui::config))
        .route("/ui/{*path}", get(ui::file))
        .route("/t/{token}", get(shared::page))
}

/// Binds the listener; `127.0.0.1:0` picks a free port (see [`TcpListener::local_addr`]).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves HTTP on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: listener::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.cancel();
    };
    listener::serve(listener, router(state), limits, shutdown).await
}
