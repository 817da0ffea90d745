//! Proxima's load harness: `proxima bench` drives a running server over HTTP (or Redis GEO,
//! as a referee), the way its users would measure it; `proxima attack` replays the
//! availability attacks; `proxima regions` simulates sharding by region. The `proxima`
//! binary mounts these commands with its default `harness` feature; a server built without
//! it links none of the harness's dependencies (redis and hdrhistogram).
//!
//! Realistic data, deterministic from `--seed`: POIs and travellers clustered around the
//! world's cities by population ([`data::Places`]), query points drawn the same way,
//! travellers moving by small steps. Each workload runs on `--connections` keep-alive
//! connections, either closed loop (each connection sends its next request when the last
//! answer arrives) or open loop at a fixed total `--rate`. In open loop, latency is measured
//! from when a request was *due*, not when it was sent, so a stalled server cannot hide its
//! queue (coordinated omission). Latencies go into HdrHistograms, and each workload gets a
//! [`report::Report`].

pub mod args;
pub mod attacks;
pub mod commands;
pub mod data;
mod events;
pub mod fences;
pub mod http;
mod load;
pub mod redis;
pub mod regions;
pub mod report;
mod trips;
pub mod workload;
mod zones;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use self::events::Acks;
use self::http::Conn;
use self::load::{load_pois, load_redis, load_travellers};
use self::report::{Percentiles, Report};
use self::workload::{Kind, Scenario, Workload};
use crate::args::BenchConfig;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The target is not an `http://host:port` or `redis://host:port` URL, or does not
    /// resolve.
    #[error("target {0:?}: expected http://host:port or redis://host:port")]
    Target(String),
    /// Connecting or loading data failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A workload the target cannot run.
    #[error("the {0} workload runs against Proxima only")]
    Unsupported(&'static str),
    /// The server refused the data load.
    #[error("loading data: the server answered {status}: {body}")]
    Load {
        /// HTTP status.
        status: u16,
        /// The answer's body.
        body: String,
    },
}

/// What the harness drives.
#[derive(Debug, Clone)]
enum Target {
    /// A Proxima server.
    Proxima(SocketAddr),
    /// A Redis server, by URL.
    Redis(String),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Self::Proxima(_) => "proxima",
            Self::Redis(_) => "redis",
        }
    }
}

/// How the target took an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Done (2xx, or Redis's success).
    Done,
    /// Refused for now, to be tried again after the wait (429 or 503 with `Retry-After`):
    /// the connection waits as a well-behaved client does, instead of sending more work
    /// that would be refused too and take the server's CPU from catching up.
    Refused(Duration),
    /// Any other error answer.
    Failed,
}

/// A connection to either kind of target.
enum Client {
    Http(Conn),
    Redis(redis::RedisConn),
}

impl Client {
    async fn open(target: &Target, key: Option<&str>) -> std::io::Result<Self> {
        Ok(match target {
            Target::Proxima(addr) => Self::Http(Conn::open(*addr, key).await?),
            Target::Redis(url) => Self::Redis(redis::RedisConn::open(url).await?),
        })
    }

    /// Sends an operation; how the target took it.
    async fn send(&mut self, scenario: &Scenario, op: &workload::Op) -> std::io::Result<Sent> {
        match self {
            Self::Http(conn) => {
                let answer = conn.send_told(scenario.http(op)).await?;
                Ok(match (answer.status, answer.retry_after) {
                    (..300, _) => Sent::Done,
                    (429 | 503, Some(wait)) => Sent::Refused(wait),
                    _ => Sent::Failed,
                })
            }
            Self::Redis(conn) => Ok(if conn.send(&redis::command(scenario, op)).await? {
                Sent::Done
            } else {
                Sent::Failed
            }),
        }
    }
}

pub(crate) async fn resolve(target: &str) -> Result<SocketAddr, BenchError> {
    let host = target
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| BenchError::Target(target.to_string()))?;
    tokio::net::lookup_host(host)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| BenchError::Target(target.to_string()))
}

/// Runs the benchmark: loads data if asked, then each workload in turn. `on_report` sees
/// each report as it is done (to print it).
pub async fn run(
    config: &BenchConfig,
    mut on_report: impl FnMut(&Report),
) -> Result<Vec<Report>, BenchError> {
    let target = if config.target.starts_with("redis://") {
        Target::Redis(config.target.clone())
    } else {
        Target::Proxima(resolve(&config.target).await?)
    };
    if let (Target::Redis(_), Some(w)) = (
        &target,
        config
            .workload
            .iter()
            .find(|w| w.has_fences() || w.has_trips()),
    ) {
        return Err(BenchError::Unsupported(w.name()));
    }
    let cities = Arc::new(data::Cities::new(config.distribution));
    let mut places = data::Places::over(cities.clone(), config.seed);
    let centres = match config.centre {
        Some(centre) => around(centre, config.seed),
        None => (0..10_000)
            .map(|_| places.next(workload::QUERY_SPREAD_DEG))
            .collect(),
    };
    let mut traveller_places = data::Places::over(cities.clone(), config.seed.wrapping_add(1));
    let n = config.load_travellers.max(config.travellers).max(1);
    let travellers = fences::grouped(&mut traveller_places, n);
    let mut scenario = Scenario::new(
        centres,
        travellers,
        config.radius_m,
        config.k,
        config.batch.max(1),
    );
    // The POIs both targets load: the same places for each.
    let poi_places = data::Places::over(cities.clone(), config.seed.wrapping_add(2));
    if config.centre.is_none() {
        scenario.drawn = Some(cities);
    }
    scenario.fields.clone_from(&config.fields);
    scenario.walk = config.walk;
    let scenario = Arc::new(scenario);
    let key = config.key.as_deref();
    match &target {
        Target::Proxima(addr) => {
            if config.load_pois > 0 {
                load_pois(*addr, key, config.load_pois, poi_places).await?;
            }
            if config.load_travellers > 0 {
                load_travellers(
                    *addr,
                    key,
                    &scenario,
                    config.load_travellers,
                    config.load_trail,
                )
                .await?;
            }
        }
        Target::Redis(url) => load_redis(url, config, &scenario, poi_places).await?,
    }
    let mut reports: Vec<Report> = Vec::new();
    // Put once, before the first workload that needs them, and kept to the end.
    let mut trips: Option<trips::TripsStage> = None;
    let mut zoned = false;
    for &workload in &config.workload {
        if let (Target::Proxima(addr), true, false) = (&target, workload.has_zones(), zoned) {
            zones::set_up(*addr, config, &scenario).await?;
            zoned = true;
        }
        if let (Target::Proxima(addr), true, None) = (&target, workload.has_trips(), &trips) {
            trips = Some(trips::TripsStage::set_up(*addr, config, &scenario).await?);
        }
        let stage = match &target {
            Target::Proxima(addr) if workload.has_fences() => {
                Some(fences::Stage::set_up(*addr, config, &scenario, workload).await?)
            }
            _ => None,
        };
        let acks = stage.as_ref().map(fences::Stage::acks);
        let (mut report, window) = run_workload(&target, config, &scenario, workload, acks).await?;
        if let Some(stage) = stage {
            report.events = Some(stage.take_down(window).await?);
            let positions = reports
                .iter()
                .rev()
                .find(|r| r.workload == Workload::Positions.name());
            report.vs_positions =
                positions.and_then(|p| Some(report.updates_per_s? / p.updates_per_s?));
        }
        if workload.has_zones() {
            let positions = reports
                .iter()
                .rev()
                .find(|r| r.workload == Workload::Positions.name());
            report.vs_positions =
                positions.and_then(|p| Some(report.updates_per_s? / p.updates_per_s?));
        }
        if workload.has_trips() {
            report.trips = trips.as_ref().map(trips::TripsStage::report);
            if workload == Workload::Trips {
                let ratio_to = |baseline: Workload| {
                    let base = reports
                        .iter()
                        .rev()
                        .find(|r| r.workload == baseline.name())?;
                    Some(report.updates_per_s? / base.updates_per_s?)
                };
                report.vs_positions = ratio_to(Workload::Positions);
                report.vs_late_positions = ratio_to(Workload::LatePositions);
            }
        }
        on_report(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Query points within about 1 km of `centre` (±0.009° of latitude, the same distance in
/// longitude).
fn around(
    centre: proxima_engine::geometry::LatLon,
    seed: u64,
) -> Vec<proxima_engine::geometry::LatLon> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dlon = 0.009 / centre.lat.to_radians().cos().max(0.01);
    (0..10_000)
        .map(|_| {
            let lat = (centre.lat + rng.random_range(-0.009..0.009)).clamp(-90.0, 90.0);
            let lon = (centre.lon + rng.random_range(-dlon..dlon)).clamp(-180.0, 180.0);
            proxima_engine::geometry::LatLon::new(lat, lon).expect("clamped")
        })
        .collect()
}

/// What one connection measured.
struct Tally {
    all: Histogram<u64>,
    queries: Histogram<u64>,
    ops: u64,
    errors: u64,
    /// Of `errors`, the refusals that said when to retry (429 or 503 with `Retry-After`).
    refused: u64,
    updates: u64,
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds: 1 µs to 60 s, 3 digits")
}

/// Runs one workload; its report and the measured window.
async fn run_workload(
    target: &Target,
    config: &BenchConfig,
    scenario: &Arc<Scenario>,
    workload: Workload,
    acks: Option<Arc<Acks>>,
) -> Result<(Report, std::ops::Range<Instant>), BenchError> {
    let connections = config.connections.max(1);
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(config.warmup.max(0.0));
    let end = measure_from + Duration::from_secs_f64(config.duration.max(0.1));
    let interval = config
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(connections as f64 / r));
    let progress = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let scenario = scenario.clone();
        let key = config.key.clone();
        let progress = progress.clone();
        let seed = config.seed ^ ((c as u64) << 20) ^ workload as u64;
        let target = target.clone();
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Client::open(&target, key.as_deref()).await?;
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut tally = Tally {
                all: histogram(),
                queries: histogram(),
                ops: 0,
                errors: 0,
                refused: 0,
                updates: 0,
            };
            // Stagger the open-loop schedules so connections do not fire in lockstep.
            let mut due = Instant::now()
                + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections as f64));
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                // In open loop a request is due at its slot. If the connection is behind (the
                // server was slow), latency counts from the slot: the wait is the server's
                // doing. If we are early, we sleep, and count from the actual send, so the
                // timer's millisecond granularity is not billed to the server.
                let intended = match interval {
                    Some(step) => {
                        let slot = due;
                        due += step;
                        if slot > now {
                            tokio::time::sleep_until(slot.into()).await;
                            Instant::now()
                        } else {
                            slot
                        }
                    }
                    None => now,
                };
                let (kind, op, updates) = scenario.next(workload, &mut rng);
                if let Some(acks) = &acks {
                    acks.sent(&op, Instant::now());
                }
                let outcome = conn.send(&scenario, &op).await;
                let done = Instant::now();
                progress.fetch_add(1, Ordering::Relaxed);
                let ok = matches!(outcome, Ok(Sent::Done));
                let refused = match outcome {
                    Ok(Sent::Refused(wait)) => Some(wait),
                    _ => None,
                };
                if let (true, Some(acks)) = (ok, &acks) {
                    acks.acked(&op, done);
                }
                if outcome.is_err() {
                    conn = Client::open(&target, key.as_deref()).await?;
                }
                if let Some(wait) = refused {
                    // Waited out as told, but never past the workload's end.
                    tokio::time::sleep_until(end.min(done + wait).into()).await;
                }
                if intended < measure_from || done > end {
                    continue;
                }
                let micros = done
                    .duration_since(intended)
                    .as_micros()
                    .clamp(1, 60_000_000) as u64;
                tally.all.record(micros).expect("clamped into range");
                if kind == Kind::Query {
                    tally.queries.record(micros).expect("clamped into range");
                }
                tally.ops += 1;
                if ok {
                    tally.updates += updates;
                } else {
                    tally.errors += 1;
                    tally.refused += u64::from(refused.is_some());
                }
            }
            Ok::<Tally, BenchError>(tally)
        }));
    }
    let ticker = tokio::spawn(show_progress(workload, progress, end));
    let mut total = Tally {
        all: histogram(),
        queries: histogram(),
        ops: 0,
        errors: 0,
        refused: 0,
        updates: 0,
    };
    for task in tasks {
        let tally = task.await.map_err(std::io::Error::other)??;
        total.all.add(&tally.all).expect("same bounds");
        total.queries.add(&tally.queries).expect("same bounds");
        total.ops += tally.ops;
        total.errors += tally.errors;
        total.refused += tally.refused;
        total.updates += tally.updates;
    }
    ticker.abort();
    let duration_s = end.duration_since(measure_from).as_secs_f64();
    let report = Report {
        workload: workload.name().to_string(),
        target: target.name().to_string(),
        connections,
        duration_s,
        ops: total.ops,
        throughput_per_s: total.ops as f64 / duration_s,
        latency_us: Percentiles::of(&total.all),
        errors: total.errors,
        refused: total.refused,
        query_latency_us: (workload == Workload::Mixed).then(|| Percentiles::of(&total.queries)),
        updates_per_s: workload
            .sends_batches()
            .then(|| total.updates as f64 / duration_s),
        vs_positions: None,
        vs_late_positions: None,
        events: None,
        trips: None,
    };
    Ok((report, measure_from..end))
}

/// A progress line on a terminal, once a second.
async fn show_progress(workload: Workload, progress: Arc<AtomicU64>, end: Instant) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = progress.load(Ordering::Relaxed);
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let rate = n as f64 / started.elapsed().as_secs_f64();
        show_line(&format!(
            "{:<18} {n:>10} requests, {rate:>10.0}/s, {left:>3} s left",
            workload.name()
        ));
    }
}

/// Shows `line` in place of the last one on stderr, when it is a terminal.
fn show_line(line: &str) {
    use std::io::{IsTerminal, Write};
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
}
