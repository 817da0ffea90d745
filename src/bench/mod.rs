//! `proxima bench`: drives a running server over HTTP, the way its users would measure it.
//!
//! Realistic data, deterministic from `--seed`: POIs and travellers clustered around the
//! world's cities by population ([`data::Places`]), query points drawn the same way,
//! travellers moving by small steps. Each workload runs on `--connections` keep-alive
//! connections, either closed loop (each connection sends its next request when the last
//! answer arrives) or open loop at a fixed total `--rate`. In open loop, latency is measured
//! from when a request was *due*, not when it was sent, so a stalled server cannot hide its
//! queue (coordinated omission). Latencies go into HdrHistograms, and each workload gets a
//! [`report::Report`].

pub mod data;
pub mod http;
pub mod redis;
pub mod report;
pub mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hdrhistogram::Histogram;
use hyper::Method;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use self::http::{Call, Conn};
use self::report::{Percentiles, Report};
use self::workload::{Kind, Scenario, Workload};
use crate::config::BenchConfig;

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
    /// The server refused the data load.
    #[error("loading data: the server answered {status}: {body}")]
    Load {
        /// HTTP status.
        status: u16,
        /// The answer's body.
        body: String,
    },
}

/// POIs per import request and updates per batch while loading.
const LOAD_CHUNK: usize = 20_000;
/// The share of loaded travellers made public, so nearby-traveller queries find some.
const PUBLIC_EVERY: usize = 10;
const CATEGORIES: [&str; 8] = [
    "cafe",
    "restaurant",
    "museum",
    "hotel",
    "shop",
    "bar",
    "park",
    "pharmacy",
];

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

    /// Sends an operation; `Ok(false)` if the target answered with an error.
    async fn send(&mut self, scenario: &Scenario, op: &workload::Op) -> std::io::Result<bool> {
        match self {
            Self::Http(conn) => conn
                .send(scenario.http(op))
                .await
                .map(|(status, _)| status < 300),
            Self::Redis(conn) => conn.send(&redis::command(scenario, op)).await,
        }
    }
}

async fn resolve(target: &str) -> Result<SocketAddr, BenchError> {
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
    let mut places = data::Places::new(config.seed);
    let centres = match config.centre {
        Some(centre) => around(centre, config.seed),
        None => (0..10_000).map(|_| places.next(0.05)).collect(),
    };
    let mut traveller_places = data::Places::new(config.seed.wrapping_add(1));
    let travellers = (0..config.load_travellers.max(config.travellers).max(1))
        .map(|_| traveller_places.next(0.1))
        .collect();
    let now_ms = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let scenario = Arc::new(Scenario {
        centres,
        travellers,
        radius_m: config.radius_m,
        k: config.k,
        batch: config.batch.max(1),
        clock: AtomicI64::new(now_ms),
    });
    let key = config.key.as_deref();
    match &target {
        Target::Proxima(addr) => {
            if config.load_pois > 0 {
                load_pois(*addr, key, config.load_pois, config.seed.wrapping_add(2)).await?;
            }
            if config.load_travellers > 0 {
                load_travellers(*addr, key, &scenario, config.load_travellers).await?;
            }
        }
        Target::Redis(url) => load_redis(url, config, &scenario).await?,
    }
    let mut reports = Vec::new();
    for &workload in &config.workload {
        let report = run_workload(&target, config, &scenario, workload).await?;
        on_report(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Query points within about 1 km of `centre` (±0.009° of latitude, the same distance in
/// longitude).
fn around(centre: crate::geometry::LatLon, seed: u64) -> Vec<crate::geometry::LatLon> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dlon = 0.009 / centre.lat.to_radians().cos().max(0.01);
    (0..10_000)
        .map(|_| {
            let lat = (centre.lat + rng.random_range(-0.009..0.009)).clamp(-90.0, 90.0);
            let lon = (centre.lon + rng.random_range(-dlon..dlon)).clamp(-180.0, 180.0);
            crate::geometry::LatLon::new(lat, lon).expect("clamped")
        })
        .collect()
}

async fn expect_ok(conn: &mut Conn, call: Call) -> Result<(), BenchError> {
    let (status, body) = conn.send(call).await?;
    if status >= 300 {
        return Err(BenchError::Load {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(())
}

async fn load_pois(
    addr: SocketAddr,
    key: Option<&str>,
    n: usize,
    seed: u64,
) -> Result<(), BenchError> {
    let mut conn = Conn::open(addr, key).await?;
    let mut places = data::Places::new(seed);
    let mut i = 0;
    while i < n {
        let mut body = String::with_capacity(LOAD_CHUNK * 100);
        for j in i..(i + LOAD_CHUNK).min(n) {
            let p = places.next(0.1);
            let rating = if j % 3 == 0 {
                format!(",\"rating\":{:.1}", 1.0 + places.unit() * 4.0)
            } else {
                String::new()
            };
            body.push_str(&format!(
                "{{\"id\":\"bench:poi:{j}\",\"lat\":{},\"lon\":{},\"name\":\"POI {j}\",\"category\":\"{}\"{rating}}}\n",
                p.lat,
                p.lon,
                CATEGORIES[j % CATEGORIES.len()]
            ));
        }
        let call = Call {
            method: Method::POST,
            path: "/v1/pois/import?format=ndjson&mode=upsert".into(),
            body: Some(("application/x-ndjson", Bytes::from(body))),
        };
        expect_ok(&mut conn, call).await?;
        i += LOAD_CHUNK;
    }
    Ok(())
}

async fn load_travellers(
    addr: SocketAddr,
    key: Option<&str>,
    scenario: &Arc<Scenario>,
    n: usize,
) -> Result<(), BenchError> {
    let mut conn = Conn::open(addr, key).await?;
    for start in (0..n).step_by(LOAD_CHUNK) {
        let op = starting_positions(scenario, start..(start + LOAD_CHUNK).min(n));
        expect_ok(&mut conn, scenario.http(&op)).await?;
    }
    // Every tenth traveller shares publicly, over a few connections at once.
    let public: Vec<usize> = (0..n).step_by(PUBLIC_EVERY).collect();
    let chunks: Vec<Vec<usize>> = public
        .chunks(public.len().div_ceil(8).max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let key = key.map(String::from);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, key.as_deref()).await?;
            for i in chunk {
                let call = Call {
                    method: Method::PUT,
                    path: format!("/v1/travellers/bench:t:{i}/sharing"),
                    body: Some((
                        "application/json",
                        Bytes::from_static(b"{\"visibility\":\"public\"}"),
                    )),
                };
                expect_ok(&mut conn, call).await?;
            }
            Ok::<(), BenchError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// The same POIs and travellers as the Proxima load, as `GEOADD`s of 1,000 members.
async fn load_redis(
    url: &str,
    config: &BenchConfig,
    scenario: &Scenario,
) -> Result<(), BenchError> {
    let mut conn = redis::RedisConn::open(url).await?;
    let failed = |what: &str| BenchError::Load {
        status: 0,
        body: format!("Redis refused a GEOADD of {what}"),
    };
    let mut places = data::Places::new(config.seed.wrapping_add(2));
    for start in (0..config.load_pois).step_by(1000) {
        let end = (start + 1000).min(config.load_pois);
        let members: Vec<(String, crate::geometry::LatLon)> = (start..end)
            .map(|j| (format!("bench:poi:{j}"), places.next(0.1)))
            .collect();
        if !conn
            .send(&redis::geoadd(redis::POIS, members.into_iter()))
            .await?
        {
            return Err(failed("POIs"));
        }
    }
    for start in (0..config.load_travellers).step_by(1000) {
        let op = starting_positions(scenario, start..(start + 1000).min(config.load_travellers));
        if !conn.send(&redis::command(scenario, &op)).await? {
            return Err(failed("travellers"));
        }
    }
    Ok(())
}

/// Travellers `range` at their starting places, as one batch of updates.
fn starting_positions(scenario: &Scenario, range: std::ops::Range<usize>) -> workload::Op {
    let moves = range
        .map(|i| {
            let p = scenario.travellers[i];
            workload::Move {
                traveller: i,
                lat: p.lat,
                lon: p.lon,
                ts: scenario.clock.fetch_add(1, Ordering::Relaxed),
            }
        })
        .collect();
    workload::Op::Positions(moves)
}

/// What one connection measured.
struct Tally {
    all: Histogram<u64>,
    queries: Histogram<u64>,
    ops: u64,
    errors: u64,
    updates: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds: 1 µs to 60 s, 3 digits")
}

async fn run_workload(
    target: &Target,
    config: &BenchConfig,
    scenario: &Arc<Scenario>,
    workload: Workload,
) -> Result<Report, BenchError> {
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
        tasks.push(tokio::spawn(async move {
            let mut conn = Client::open(&target, key.as_deref()).await?;
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut tally = Tally {
                all: histogram(),
                queries: histogram(),
                ops: 0,
                errors: 0,
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
                let outcome = conn.send(&scenario, &op).await;
                let done = Instant::now();
                progress.fetch_add(1, Ordering::Relaxed);
                let ok = matches!(outcome, Ok(true));
                if outcome.is_err() {
                    conn = Client::open(&target, key.as_deref()).await?;
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
        updates: 0,
    };
    for task in tasks {
        let tally = task.await.map_err(std::io::Error::other)??;
        total.all.add(&tally.all).expect("same bounds");
        total.queries.add(&tally.queries).expect("same bounds");
        total.ops += tally.ops;
        total.errors += tally.errors;
        total.updates += tally.updates;
    }
    ticker.abort();
    let duration_s = end.duration_since(measure_from).as_secs_f64();
    Ok(Report {
        workload: workload.name().to_string(),
        target: target.name().to_string(),
        connections,
        duration_s,
        ops: total.ops,
        throughput_per_s: total.ops as f64 / duration_s,
        latency_us: Percentiles::of(&total.all),
        errors: total.errors,
        query_latency_us: (workload == Workload::Mixed).then(|| Percentiles::of(&total.queries)),
        updates_per_s: (workload == Workload::Positions).then(|| total.updates as f64 / duration_s),
    })
}

/// A progress line on a terminal, once a second.
async fn show_progress(workload: Workload, progress: Arc<AtomicU64>, end: Instant) {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() {
        return;
    }
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = progress.load(Ordering::Relaxed);
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let rate = n as f64 / started.elapsed().as_secs_f64();
        eprint!(
            "\r{:<18} {n:>10} requests, {rate:>10.0}/s, {left:>3} s left ",
            workload.name()
        );
        let _ = std::io::stderr().flush();
    }
}
