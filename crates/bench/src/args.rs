//! The harness's command lines: `proxima bench`, `proxima attack` and `proxima regions`,
//! each a `clap` argument group the binary mounts as a subcommand.

use std::path::PathBuf;

use clap::Args;

use proxima_engine::geometry::LatLon;

/// Configuration of `proxima regions`.
#[derive(Debug, Clone, Args)]
pub struct RegionsConfig {
    /// Query centres drawn (near cities, by population, as `proxima bench` draws them).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub queries: u64,
    /// Region sizes: H3 resolutions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4", value_parser = clap::value_parser!(u8).range(0..=15))]
    pub resolutions: Vec<u8>,
    /// Query radii in km, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2,200")]
    pub radius_km: Vec<f64>,
    /// Seed of the query centres.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Configuration of `proxima attack`.
#[derive(Debug, Clone, Args)]
pub struct AttackArgs {
    /// The server to attack (`http://host:port`).
    #[arg(long, default_value = "http://127.0.0.1:7878")]
    pub target: String,
    /// The victim's key (read and write scopes); none for an open server.
    #[arg(long, env = "PROXIMA_ATTACK_VICTIM_KEY")]
    pub victim_key: Option<String>,
    /// The attackers' keys, one a line (ordinary keys: read and write, no admin).
    #[arg(long)]
    pub attacker_keys: Option<PathBuf>,
    /// Attacks to run, comma-separated: roaming, maps, polygons, imports.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "roaming,maps,polygons,imports,routes,followers,narrowings"
    )]
    pub attack: Vec<crate::attacks::Attack>,
    /// Seconds measured per phase (without, then with the attack).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Travellers around the victim.
    #[arg(long, default_value_t = 10_000)]
    pub crowd: usize,
    /// Run the attackers' client at the victim's priority. By default it runs niced, as
    /// clients on other machines would not take the victim's client's CPU.
    #[arg(long)]
    pub attackers_at_full_priority: bool,
    /// Print each report as one JSON line instead of a table row.
    #[arg(long)]
    pub json: bool,
}

/// Configuration of `proxima bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchConfig {
    /// The server to drive.
    #[arg(
        long,
        env = "PROXIMA_BENCH_TARGET",
        default_value = "http://127.0.0.1:7878"
    )]
    pub target: String,

    /// Workloads to run, comma-separated: healthz, nearby-pois, within-pois,
    /// nearby-travellers, position, positions, mixed, fences, roaming. The fence workloads
    /// report their updates per second as a share of `positions` when it ran before them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "healthz,nearby-pois,within-pois,nearby-travellers,position,positions,mixed,fences,roaming"
    )]
    pub workload: Vec<crate::workload::Workload>,

    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,

    /// Seconds measured per workload.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds run before measuring, per workload.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Open loop: this many requests per second in all (latency counted from when each was
    /// due). Without it, closed loop.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Updates per request in the `positions` workload.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,

    /// Load this many POIs (clustered around cities) before running.
    #[arg(long, default_value_t = 0)]
    pub load_pois: usize,

    /// Load this many travellers (every tenth public) before running.
    #[arg(long, default_value_t = 0)]
    pub load_travellers: usize,

    /// Positions each loaded traveller reports while loading, a second apart, a few metres
    /// apart: the server's trail length fills its trails, as a day's running would.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub load_trail: u64,

    /// Static fences the `fences` workload puts (needs the admin scope when the server has
    /// keys: they see every public traveller).
    #[arg(long, default_value_t = 10_000)]
    pub fences: usize,

    /// The `roaming` workload puts a fence around every this many travellers, seen by it
    /// and the friends it travels with (10: its group of ten). With 1, every traveller has
    /// one and every traveller shares publicly, so each fence sees everyone within 500 m
    /// (what Tile38's `ROAM people * 500` watches).
    #[arg(long, default_value_t = crate::fences::ROAMING_EVERY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10))]
    pub roaming_every: usize,

    /// Event streams the fence workloads open, each following 100 fences.
    #[arg(long, default_value_t = 32)]
    pub subscribers: usize,

    /// Leave the fence workloads' fences in place afterwards (to measure the server with
    /// them by another tool, such as `wrk` with `scripts/wrk-positions.lua`).
    #[arg(long)]
    pub keep_fences: bool,

    /// How many travellers (`bench:t:0...`) the update workloads move.
    #[arg(long, default_value_t = 10_000)]
    pub travellers: usize,

    /// Query radius in metres.
    #[arg(long, default_value_t = 2000.0)]
    pub radius_m: f64,

    /// Results per query.
    #[arg(long, default_value_t = 20)]
    pub k: usize,

    /// Query around this place (`LAT,LON`, each query point within ~1 km of it) instead of
    /// around the world's cities: a dense centre, such as `48.8566,2.3522` for central Paris.
    #[arg(long, value_parser = parse_centre)]
    pub centre: Option<LatLon>,

    /// Seed of the data and query generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// How POIs, travellers and query points are spread around the world's cities:
    /// `population` (a city in proportion to its population, uniform within ±0.1°: big
    /// cities very dense) or `sqrt-population` (in proportion to its square root, a
    /// Gaussian of σ = 0.5 + 3·√(population/10⁶) km, at most 15 km).
    #[arg(long, default_value = "population")]
    pub distribution: crate::data::Distribution,

    /// The `fields=` of nearby POI queries (`id,distance_m`, say): a smaller answer for
    /// clients that need no names or tags (Proxima only; Redis answers names and distances).
    #[arg(long)]
    pub fields: Option<String>,

    /// Travellers walk away from where they start, about 7 m a report with 2 m of noise
    /// (a path, as a phone on a walk reports it), instead of reporting a random point
    /// within about 100 m of their start each time.
    #[arg(long)]
    pub walk: bool,

    /// API key to send as a bearer token.
    #[arg(long, env = "PROXIMA_BENCH_KEY", hide_env_values = true)]
    pub key: Option<String>,

    /// Print one JSON object per workload instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `LAT,LON` into a validated coordinate.
fn parse_centre(text: &str) -> Result<LatLon, String> {
    let (lat, lon) = text
        .split_once(',')
        .ok_or_else(|| format!("expected LAT,LON, got {text:?}"))?;
    let number = |t: &str| {
        t.trim()
            .parse::<f64>()
            .map_err(|_| format!("expected a number, got {t:?}"))
    };
    LatLon::new(number(lat)?, number(lon)?).map_err(|e| e.to_string())
}
