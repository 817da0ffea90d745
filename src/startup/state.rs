//! The server's state, built from its command line: the engine with its limits and
//! quotas, the keys and tokens, and the shared state every request handler sees.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::RunError;
use crate::clock::Clock;
use crate::config::ServeConfig;
use crate::engine::{Engine, EngineConfig, LiveConfig, RouteConfig};
use crate::events::EventConfig;
use crate::fences::FenceQuotas;
use crate::pois::CursorKey;
use crate::server::{self, AppState, Limits};
use crate::travellers::TravellerConfig;

/// Who may call: the API keys and the traveller-token keys, either or both.
pub(super) struct Credentials {
    keys: Option<Arc<server::auth::Keys>>,
    tokens: Option<Arc<server::auth::Tokens>>,
}

/// The API keys and the traveller-token keys; refuses an open server (neither) that would
/// listen beyond this machine, unless `--insecure`.
pub(super) fn credentials(config: &ServeConfig) -> Result<Credentials, RunError> {
    let keys = config
        .keys
        .as_deref()
        .map(server::auth::Keys::load)
        .transpose()?
        .map(Arc::new);
    let tokens = server::auth::Tokens::load(&server::auth::TokenConfig {
        hs256_secret_file: config.jwt_hs256_secret_file.clone(),
        public_key_file: config.jwt_public_key_file.clone(),
        jwks_file: config.jwks_file.clone(),
        audience: config.jwt_audience.clone(),
        issuer: config.jwt_issuer.clone(),
        leeway_s: config.jwt_leeway,
    })?
    .map(Arc::new);
    if keys.is_none() && tokens.is_none() && !config.listen.ip().is_loopback() && !config.insecure {
        return Err(RunError::Insecure(config.listen));
    }
    Ok(Credentials { keys, tokens })
}

/// The traveller time-to-live, in ms.
pub(super) fn ttl_ms(config: &ServeConfig) -> i64 {
    i64::try_from(config.traveller_ttl.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// An empty engine with the configured trails, TTL, fence quotas and event retention.
pub(super) fn engine(config: &ServeConfig, clock: Arc<dyn Clock>) -> Engine {
    let cursor_key = match &config.cursor_secret {
        Some(secret) => CursorKey::from_secret(secret.as_bytes()),
        None => CursorKey::random(),
    };
    Engine::new(EngineConfig {
        cursor_key,
        clock,
        routes: RouteConfig {
            cache_bytes: to_usize(config.route_cache_mb.saturating_mul(1 << 20)),
        },
        travellers: TravellerConfig {
            trail_capacity: to_usize(config.trail_length),
            ttl_ms: ttl_ms(config),
        },
        live: LiveConfig {
            quotas: FenceQuotas {
                max_fences: to_usize(config.max_fences),
                max_vertices: to_usize(config.max_fence_vertices),
                owner_fences: to_usize(config.max_fences_per_owner),
                owner_vertices: to_usize(config.max_vertices_per_owner),
                roaming_per_traveller: to_usize(config.max_roaming_per_traveller),
                max_roaming_radius_m: config.max_roaming_radius_m,
            },
            events: EventConfig {
                retention_ms: i64::try_from(config.event_retention.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
                max_retained: to_usize(config.event_retention_max),
                subscriber_buffer: to_usize(config.subscriber_buffer),
                max_subscribers: to_usize(config.max_subscribers),
            },
        },
    })
}

/// The limits requests are held to.
fn limits(config: &ServeConfig) -> Limits {
    Limits {
        max_body_bytes: config.max_body_bytes,
        max_import_bytes: config.max_import_bytes,
        max_batch_bytes: config.max_batch_bytes,
        request_timeout: std::time::Duration::from_secs(config.request_timeout.max(1)),
        max_area_vertices: to_usize(config.max_area_vertices),
        max_fences_per_stream: to_usize(config.max_fences_per_stream),
        max_watch_snapshot: to_usize(config.max_watch_snapshot),
        max_subscribers: to_usize(config.max_subscribers),
        max_clock_skew_ms: i64::try_from(config.max_clock_skew.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        map_frame: std::time::Duration::from_millis(config.map_frame_ms),
    }
}

/// What every request handler shares: the engine, the limits, the credentials, the
/// stream slots, the imports' pool and the idempotency window; not yet ready.
pub(super) fn shared(
    config: &ServeConfig,
    engine: Engine,
    credentials: Credentials,
    tmp_dir: std::path::PathBuf,
) -> Result<AppState, RunError> {
    let Credentials { keys, tokens } = credentials;
    Ok(AppState::from(server::Shared {
        engine: Arc::new(engine),
        ready: Arc::new(AtomicBool::new(false)),
        limits: limits(config),
        tmp_dir,
        keys,
        tokens,
        started: std::time::Instant::now(),
        streams: Arc::new(server::sse::StreamSlots::new(to_usize(
            config.max_streams_per_key,
        ))),
        maps: Arc::new(server::sse::StreamSlots::new(to_usize(
            config.max_maps_per_owner,
        ))),
        imports: server::imports::Imports::new(to_usize(config.max_imports))
            .map_err(RunError::Serve)?,
        idempotency: server::idempotency::IdempotencyWindow::new(
            server::idempotency::WindowConfig {
                keep: std::time::Duration::from_secs(config.idempotency_window),
                max_bytes: config.idempotency_max_bytes,
            },
        ),
        replicator: Arc::default(),
        link_rate: server::link_rate::LinkRate::new(
            std::num::NonZeroU32::new(config.link_rate).unwrap_or(std::num::NonZeroU32::MIN),
        ),
        device_rate: server::link_rate::DeviceRate::new(
            std::num::NonZeroU32::new(config.device_rate).unwrap_or(std::num::NonZeroU32::MIN),
        ),
        friends_rate: server::link_rate::DeviceRate::once_per(server::FRIENDS_EVERY),
        stopping: tokio_util::sync::CancellationToken::new(),
        ui: (!config.no_ui).then(|| server::ui::UiConfig {
            tiles: (config.ui_tiles != "none" && !config.ui_tiles.is_empty())
                .then(|| config.ui_tiles.clone()),
            attribution: config.ui_tiles_attribution.clone(),
        }),
    }))
}

/// The connection limits the listener holds clients to.
pub(super) fn connection_limits(config: &ServeConfig) -> server::listener::ConnectionLimits {
    server::listener::ConnectionLimits {
        max_connections: config.max_connections.max(1),
        max_connections_per_address: config
            .max_connections_per_address
            .unwrap_or(config.max_connections / 4)
            .max(1),
        header_read_timeout: std::time::Duration::from_secs(config.header_read_timeout.max(1)),
        max_header_bytes: config.max_header_bytes,
    }
}

/// A count from the command line as a `usize`, saturating.
pub(super) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
