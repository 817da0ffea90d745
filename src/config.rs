//! The server's command lines, `proxima serve` and `proxima import`: every flag also read
//! from a `PROXIMA_*` environment variable, passed down explicitly (no globals). The binary
//! mounts them, and the harness's own (`proxima_bench::args`), as subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Configuration of `proxima import`.
#[derive(Debug, Clone, Args)]
pub struct ImportConfig {
    /// The dumps to import (CSV, NDJSON, GeoJSON, OSM PBF), together as one import.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Their format; guessed from each file's extension when left out.
    #[arg(long, env = "PROXIMA_IMPORT_FORMAT")]
    pub format: Option<crate::import::ImportFormat>,

    /// `upsert` adds to (and replaces by id in) what is there; `replace` makes the files the
    /// whole set.
    #[arg(long, env = "PROXIMA_IMPORT_MODE", default_value = "upsert")]
    pub mode: crate::engine::ImportMode,

    /// Any bad record refuses the whole import and changes nothing.
    #[arg(long, env = "PROXIMA_IMPORT_STRICT")]
    pub strict: bool,

    /// The data directory to import into.
    #[arg(long, env = "PROXIMA_DATA_DIR", default_value = "./proxima-data")]
    pub data_dir: PathBuf,
}

/// Configuration of `proxima serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "PROXIMA_LISTEN", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,

    /// Directory for the server's state.
    #[arg(long, env = "PROXIMA_DATA_DIR", default_value = "./proxima-data")]
    pub data_dir: PathBuf,

    /// API keys file: `<key> <scopes> [<requests per second>]` a line. Without it the server
    /// is open to anyone who can reach it.
    #[arg(long, env = "PROXIMA_KEYS")]
    pub keys: Option<PathBuf>,

    /// Allow an open server (no `--keys`) to listen on a non-loopback address.
    #[arg(long, env = "PROXIMA_INSECURE")]
    pub insecure: bool,

    /// Start empty instead of loading the bundled sample data.
    #[arg(long, env = "PROXIMA_NO_SAMPLE")]
    pub no_sample: bool,

    /// When every snapshot in the data dir is unreadable and the log does not hold the
    /// state from its start, move them into `damaged-<ms>/` there and start empty, instead
    /// of refusing to start.
    #[arg(long, env = "PROXIMA_START_EMPTY_IF_DAMAGED")]
    pub start_empty_if_damaged: bool,

    /// Largest JSON request body, in bytes.
    #[arg(long, env = "PROXIMA_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Largest import body, in bytes (imports are streamed).
    #[arg(long, env = "PROXIMA_MAX_IMPORT_BYTES", default_value_t = 1 << 30)]
    pub max_import_bytes: u64,

    /// Imports running at once (one per key at most), each on a thread of the imports' own
    /// pool; one more is answered 429.
    #[arg(long, env = "PROXIMA_MAX_IMPORTS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub max_imports: u64,

    /// Seconds after which a traveller's newest position expires.
    #[arg(long, env = "PROXIMA_TRAVELLER_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub traveller_ttl: u64,

    /// Positions kept in each traveller's trail: the recent path the live map draws behind
    /// a traveller (the viewer draws 8) and `GET .../trail` lists. A trip's whole route is
    /// kept on disk by the route store, so the trail need not be long; at 24 bytes a point
    /// it is most of a traveller's memory (10M travellers: 8 points ≈ 2 GB, 32 ≈ 8 GB).
    #[arg(long, env = "PROXIMA_TRAIL_LENGTH", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub trail_length: u64,

    /// Largest position batch body (`POST /v1/positions`), in bytes.
    #[arg(long, env = "PROXIMA_MAX_BATCH_BYTES", default_value_t = 16 << 20)]
    pub max_batch_bytes: usize,

    /// When the write-ahead log fsyncs: `always` (before each acknowledgement), `batch` (at
    /// most 10 ms after; nothing acknowledged is lost on a process crash) or `never`.
    #[arg(long, env = "PROXIMA_FSYNC", default_value = "batch")]
    pub fsync: crate::persist::wal::FsyncMode,

    /// Write a snapshot every this many seconds (0: only on request and at shutdown).
    #[arg(long, env = "PROXIMA_SNAPSHOT_EVERY", default_value_t = 600)]
    pub snapshot_every: u64,

    /// Memory the route store may keep its file's pages in, MiB (the kernel's page cache
    /// holds them too). A larger cache saved nothing measurable with a million trips; see
    /// `docs/performance.md`.
    #[arg(long, env = "PROXIMA_ROUTE_CACHE_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub route_cache_mb: u64,

    /// Keep a few hundred simulated travellers moving around the world's big cities, on a
    /// fresh temporary data directory (removed at exit; `--data-dir` is not touched).
    #[arg(long, env = "PROXIMA_DEMO")]
    pub demo: bool,

    /// Join a cluster: the NATS servers (`nats://host:port`, comma-separated) whose
    /// JetStream stream is this node's log instead of the local WAL. Off: a single node.
    #[arg(long, env = "PROXIMA_CLUSTER", value_delimiter = ',')]
    pub cluster: Vec<String>,

    /// The cluster's name: its stream (in upper case) and its subjects' prefix.
    #[arg(long, env = "PROXIMA_CLUSTER_NAME", default_value = "proxima", value_parser = parse_cluster_name)]
    pub cluster_name: String,

    /// Copies of the cluster's stream (and of its buckets) that JetStream keeps: 1, 3 or
    /// 5. Left out, a node takes what the stream has (1 when it creates it); given and
    /// different from the stream's, the node changes the stream to it, or refuses to start
    /// if JetStream will not.
    #[arg(long, env = "PROXIMA_CLUSTER_REPLICAS", value_parser = parse_replicas)]
    pub cluster_replicas: Option<usize>,

    /// Seconds a write waits for the cluster's stream and this node's apply, and a read for
    /// its `x-proxima-min-seq`, before a 503. At most 60: a publish retried within it is
    /// stored once (the stream's duplicate window is 120 s).
    #[arg(long, env = "PROXIMA_MAX_WAIT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub max_wait: u64,

    /// In a cluster, also publish every fence event to JetStream, on
    /// `<name>.events.<fence>` (kept in the stream `<NAME>_EVENTS` for
    /// `--event-retention`), each stored once whichever nodes publish it.
    #[arg(long, env = "PROXIMA_CLUSTER_EVENTS", requires = "cluster")]
    pub cluster_events: bool,

    /// Seconds a cluster node may go without being caught up with the stream before
    /// `/readyz` fails.
    #[arg(long, env = "PROXIMA_MAX_LAG", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_lag: u64,

    /// Serve no map viewer at `/` and `/ui/`.
    #[arg(long, env = "PROXIMA_NO_UI")]
    pub no_ui: bool,

    /// The viewer's raster tile URL template (`{z}/{x}/{y}`); `none` for the offline
    /// world outline only.
    #[arg(
        long,
        env = "PROXIMA_UI_TILES",
        default_value = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    )]
    pub ui_tiles: String,

    /// The attribution shown with the viewer's tiles (HTML).
    #[arg(
        long,
        env = "PROXIMA_UI_TILES_ATTRIBUTION",
        default_value = "&copy; <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors"
    )]
    pub ui_tiles_attribution: String,

    /// A file holding the secret of HS256 traveller tokens (at least 32 bytes).
    #[arg(long, env = "PROXIMA_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,

    /// A PEM public key that signs traveller tokens: RSA (RS256), P-256 (ES256) or Ed25519
    /// (EdDSA).
    #[arg(long, env = "PROXIMA_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// A JWKS file of public keys that sign traveller tokens, chosen by the token's `kid`.
    #[arg(long, env = "PROXIMA_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// The `aud` every traveller token must carry (required with tokens).
    #[arg(long, env = "PROXIMA_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The `iss` every traveller token must carry (required with tokens).
    #[arg(long, env = "PROXIMA_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Seconds of clock difference allowed on a token's `exp` and `nbf`.
    #[arg(long, env = "PROXIMA_JWT_LEEWAY", default_value_t = 30)]
    pub jwt_leeway: u64,

    /// Connections served at once; one more is answered 503.
    #[arg(long, env = "PROXIMA_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Connections one client address may hold at once; one more is answered 429. Default:
    /// a quarter of --max-connections. Behind a proxy that connects from one address, set it
    /// to --max-connections.
    #[arg(long, env = "PROXIMA_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,

    /// Seconds a connection has to send a request's headers (slow clients are cut off).
    #[arg(long, env = "PROXIMA_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,

    /// Largest request line plus headers, in bytes (at least 8192).
    #[arg(long, env = "PROXIMA_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Seconds a request with a body may take before it is answered 503 (imports, whose
    /// bodies have an idle timeout instead, excepted).
    #[arg(long, env = "PROXIMA_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,

    /// Secret that signs page cursors, so they survive restarts and work across servers
    /// sharing it. Without it a random one is drawn at start.
    #[arg(long, env = "PROXIMA_CURSOR_SECRET", hide_env_values = true)]
    pub cursor_secret: Option<String>,

    /// Most positions an area (a polygon query's or a fence's) may have.
    #[arg(long, env = "PROXIMA_MAX_AREA_VERTICES", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(4..=100_000))]
    pub max_area_vertices: u64,

    /// Most fences there may be, in all (the last tenth is kept for admin-scope keys).
    #[arg(long, env = "PROXIMA_MAX_FENCES", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_fences: u64,

    /// Most vertices all fences' areas may hold together (the last tenth is kept for
    /// admin-scope keys).
    #[arg(long, env = "PROXIMA_MAX_FENCE_VERTICES", default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub max_fence_vertices: u64,

    /// Most fences one key or traveller token may have (admin-scope keys excepted).
    #[arg(long, env = "PROXIMA_MAX_FENCES_PER_OWNER", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_fences_per_owner: u64,

    /// Most vertices one key's or traveller token's fences may hold together (admin-scope
    /// keys excepted).
    #[arg(long, env = "PROXIMA_MAX_VERTICES_PER_OWNER", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(4..=1_000_000_000))]
    pub max_vertices_per_owner: u64,

    /// Most roaming fences one key or traveller token may have around one traveller
    /// (admin-scope keys excepted).
    #[arg(long, env = "PROXIMA_MAX_ROAMING_PER_TRAVELLER", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_roaming_per_traveller: u64,

    /// The largest radius of a roaming fence, metres (at most 50,000).
    #[arg(long, env = "PROXIMA_MAX_ROAMING_RADIUS_M", default_value_t = 5_000.0, value_parser = parse_roaming_radius)]
    pub max_roaming_radius_m: f64,

    /// Live maps one key, traveller token or (on an open server) client address may hold
    /// open at once.
    #[arg(long, env = "PROXIMA_MAX_MAPS_PER_OWNER", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_maps_per_owner: u64,

    /// Seconds a position's `ts` may lie ahead of the server's clock; a report further in
    /// the future is refused (400), so that no report can pin a traveller in place.
    #[arg(long, env = "PROXIMA_MAX_CLOCK_SKEW", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub max_clock_skew: u64,

    /// Seconds a fence event stays available to streams resuming with `Last-Event-ID`.
    #[arg(long, env = "PROXIMA_EVENT_RETENTION", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub event_retention: u64,

    /// Most fence events retained, whatever their age (a busy hour retains fewer).
    #[arg(long, env = "PROXIMA_EVENT_RETENTION_MAX", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub event_retention_max: u64,

    /// Events a stream may have waiting before it is ended with a `reset`.
    #[arg(long, env = "PROXIMA_SUBSCRIBER_BUFFER", default_value_t = 1_024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub subscriber_buffer: u64,

    /// Event streams open at once, in all (fence streams and live maps).
    #[arg(long, env = "PROXIMA_MAX_SUBSCRIBERS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_subscribers: u64,

    /// Event streams (fence streams and live maps) one key, traveller token or (on an open
    /// server) client address may hold open at once.
    #[arg(long, env = "PROXIMA_MAX_STREAMS_PER_KEY", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_streams_per_key: u64,

    /// Share-link reads (`/v1/shared/…`, `/t/…`, which need no key) one client address may
    /// make a second, with bursts of twice that.
    #[arg(long, env = "PROXIMA_LINK_RATE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub link_rate: u32,

    /// Reports one tracker device (`/v1/ingest/…`, with a device token) may send a second,
    /// with bursts of twice that.
    #[arg(long, env = "PROXIMA_DEVICE_RATE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub device_rate: u32,

    /// Most travellers a live map (`GET /v1/travellers/watch`) starts with; a box holding more
    /// is refused (ask for a smaller one).
    #[arg(long, env = "PROXIMA_MAX_WATCH_SNAPSHOT", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_watch_snapshot: u64,

    /// Milliseconds between a live map's frames: each frame sends every traveller that
    /// changed since the last, once, as it is now.
    #[arg(long, env = "PROXIMA_MAP_FRAME_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub map_frame_ms: u64,

    /// Seconds the answer to a write sent with an `Idempotency-Key` is kept, to be given
    /// again to a retry with that key.
    #[arg(long, env = "PROXIMA_IDEMPOTENCY_WINDOW", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub idempotency_window: u64,

    /// The most bytes of answers kept for `Idempotency-Key` retries (the oldest go first).
    #[arg(long, env = "PROXIMA_IDEMPOTENCY_MAX_BYTES", default_value_t = 64 << 20)]
    pub idempotency_max_bytes: usize,

    /// Fences one stream (`GET /v1/events?fence=...`) may follow.
    #[arg(long, env = "PROXIMA_MAX_FENCES_PER_STREAM", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_fences_per_stream: u64,
}

impl ServeConfig {
    /// The defaults, as `proxima serve` with no flags would have them, but with the sample
    /// data off and a free port: the starting point for tests and embedding.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            keys: None,
            insecure: false,
            no_sample: true,
            start_empty_if_damaged: false,
            max_body_bytes: 1 << 20,
            max_import_bytes: 1 << 30,
            max_imports: 2,
            traveller_ttl: 3600,
            trail_length: 8,
            max_batch_bytes: 16 << 20,
            fsync: crate::persist::wal::FsyncMode::Batch,
            snapshot_every: 0,
            route_cache_mb: 256,
            max_connections: 4096,
            max_connections_per_address: None,
            jwt_hs256_secret_file: None,
            jwt_public_key_file: None,
            jwks_file: None,
            jwt_audience: None,
            jwt_issuer: None,
            jwt_leeway: 30,
            no_ui: false,
            demo: false,
            cluster: Vec::new(),
            cluster_name: "proxima".into(),
            cluster_replicas: None,
            cluster_events: false,
            max_wait: 5,
            max_lag: 5,
            ui_tiles: "none".into(),
            ui_tiles_attribution: String::new(),
            header_read_timeout: 10,
            max_header_bytes: 16 * 1024,
            request_timeout: 30,
            cursor_secret: None,
            max_area_vertices: 10_000,
            max_fences: 100_000,
            max_fence_vertices: 10_000_000,
            max_fences_per_owner: 1_000,
            max_vertices_per_owner: 100_000,
            max_roaming_per_traveller: 8,
            max_roaming_radius_m: 5_000.0,
            max_maps_per_owner: 8,
            max_clock_skew: 86_400,
            event_retention: 3_600,
            event_retention_max: 1_000_000,
            subscriber_buffer: 1_024,
            max_subscribers: 10_000,
            max_streams_per_key: 64,
            link_rate: 20,
            device_rate: 10,
            max_fences_per_stream: 100,
            max_watch_snapshot: 10_000,
            map_frame_ms: 250,
            idempotency_window: 3_600,
            idempotency_max_bytes: 64 << 20,
        }
    }
}

/// A cluster name: 1 to 32 lowercase letters, digits, `-` or `_` (it names a stream and
/// prefixes subjects, where `.`, `*`, `>` and spaces have meanings).
fn parse_cluster_name(name: &str) -> Result<String, String> {
    let fine = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if fine {
        Ok(name.to_string())
    } else {
        Err("1 to 32 lowercase letters, digits, '-' or '_'".into())
    }
}

/// A roaming radius limit: more than 0, at most the hard limit.
fn parse_roaming_radius(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= crate::fences::MAX_ROAMING_RADIUS_M => Ok(r),
        _ => Err(format!(
            "expected metres, more than 0 and at most {}, got {text:?}",
            crate::fences::MAX_ROAMING_RADIUS_M
        )),
    }
}

/// JetStream's replica counts: 1, 3 or 5.
fn parse_replicas(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ (1 | 3 | 5)) => Ok(n),
        _ => Err(format!("expected 1, 3 or 5, got {text:?}")),
    }
}
