//! `proxima attack`: the availability attacks found by probing the server as hostile
//! callers, replayed against a running server to measure what each costs everyone else.
//!
//! Each attack runs in two phases of `--duration` seconds, after an unmeasured warm-up:
//! without the attack, then with it. In both, a **victim** writes (its own position reports, or batches of them) as fast
//! as the server answers, and a **probe** asks `/healthz` every 5 ms. The report gives the
//! victim's rate with the attack as a share of its rate without, and the probe's latency
//! percentiles in each phase. The attackers are ordinary keys (`--attacker-keys`, one a
//! line: no admin scope), so every quota a hostile caller meets applies.
//!
//! - `roaming`: a public victim among `--crowd` public travellers within 5 km; each
//!   attacker puts as many 5 km roaming fences around it as the server lets one caller
//!   (a thousand fences of 50 km around one traveller, before quotas and the radius limit).
//! - `maps`: each attacker opens as many whole-world live maps as the server lets one
//!   caller, while the victim moves a crowd (a tenth of it public) in batches of 1,000.
//! - `polygons`: four attackers send 10,000-vertex areas (self-crossing stars and valid
//!   circles) to `POST /v1/pois/within` back to back.
//! - `imports`: 530 imports trickling a byte every 10 s, while the victim sends batches
//!   and puts fences.
//! - `routes`: the victim's crowd is on trips (every batch adds route points), and four
//!   attackers read the route of a trip of their own back to back: each read of a trip
//!   while points wait settles that trip's points first.
//! - `followers`: four attackers each open as many follower streams as the server lets one
//!   caller on a trip of their own, and move along it back to back, so that every stream
//!   is woken by every write, while the victim moves a crowd in batches. An honest
//!   follower of a trip of the victim's own is measured too: its traveller moves every
//!   300 ms or so, and the report gives how long each move took to reach the follower's stream
//!   (from the write's sending to the frame's arrival), without the attack and with it.
//! - `narrowings`: the victim's crowd is on trips, as in `routes`; four attackers each
//!   store a trip of [`NARROWED_POINTS`] points of their own and narrow it back to back,
//!   its start moved past one more point a request, so that each narrowing cuts a settled
//!   point and the route store rewrites the route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Method;
use serde::Serialize;

use super::BenchError;
use super::http::{Call, Conn};

/// The attacks, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attack {
    /// Roaming fences around one traveller in a crowd.
    Roaming,
    /// Whole-world live maps.
    Maps,
    /// Large and self-crossing polygons.
    Polygons,
    /// Imports that trickle.
    Imports,
    /// Route reads while route points wait.
    Routes,
    /// Follower streams woken by every write.
    Followers,
    /// Long trips narrowed one point at a time.
    Narrowings,
}

impl Attack {
    /// Its name, as `--attack` takes it.
    fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// How to run the attacks.
#[derive(Debug, Clone)]
pub struct AttackConfig {
    /// The server.
    pub target: SocketAddr,
    /// The victim's key (read and write).
    pub victim_key: Option<String>,
    /// The attackers' keys.
    pub attacker_keys: Vec<String>,
    /// Seconds measured per phase.
    pub duration: Duration,
    /// Travellers around the victim.
    pub crowd: usize,
    /// Run the attackers' client on a niced thread (see [`attackers_runtime`]).
    pub niced_attackers: bool,
}

impl AttackConfig {
    /// The configuration `args` describe: the target resolved, the attackers' keys read.
    pub async fn from_args(args: &crate::args::AttackArgs) -> Result<Self, BenchError> {
        let target = super::resolve(&args.target).await?;
        let attacker_keys = match &args.attacker_keys {
            Some(path) => std::fs::read_to_string(path)?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
                .collect(),
            None => Vec::new(),
        };
        if !(args.duration > 0.0 && args.duration <= 3600.0) {
            return Err(BenchError::Io(std::io::Error::other(
                "--duration: between 0 and 3600 seconds",
            )));
        }
        Ok(Self {
            target,
            victim_key: args.victim_key.clone(),
            attacker_keys,
            duration: Duration::from_secs_f64(args.duration),
            crowd: args.crowd.clamp(1, 1_000_000),
            niced_attackers: !args.attackers_at_full_priority,
        })
    }
}

/// The head of the table [`AttackReport::row`] writes.
pub const TABLE_HEAD: &str = "attack     set up  refused  attacks/s  victim/s before  victim/s during  ratio  healthz p99 µs before  during   max during  follower p99 µs before  during  missed";

/// What one attack did to the victim and the probe.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// The attack.
    pub attack: String,
    /// What the attackers set up (fences, maps, requests).
    pub set_up: u64,
    /// What the attackers were refused (quotas, limits).
    pub refused: u64,
    /// The victim's writes (updates) a second without the attack.
    pub victim_before_per_s: f64,
    /// With it.
    pub victim_during_per_s: f64,
    /// During ÷ before.
    pub victim_ratio: f64,
    /// Requests the attackers had answered a second while the victim was measured (the
    /// attacks that send requests back to back: `polygons`, `routes`, `followers`' writes;
    /// 0 for the others).
    pub attack_requests_per_s: f64,
    /// `/healthz` latency without the attack, µs.
    pub healthz_before_us: Latency,
    /// With it.
    pub healthz_during_us: Latency,
    /// The `followers` attack: how long an honest follower waited for each move of the
    /// trip it follows, from the write's sending to the frame's arrival, without the
    /// attack, µs (`None` for the other attacks).
    pub follower_before_us: Option<Latency>,
    /// With it.
    pub follower_during_us: Option<Latency>,
    /// Moves whose frame had not come [`FOLLOWER_WAIT`] after the write, in both phases
    /// (each counted in the latencies at that wait): a follower missing points.
    pub follower_missed: u64,
}

impl AttackReport {
    /// One row of the table under [`TABLE_HEAD`].
    pub fn row(&self) -> String {
        format!(
            "{:<9} {:>7} {:>8} {:>10.0} {:>16.0} {:>16.0} {:>6.2} {:>22} {:>7} {:>12} {:>23} {:>7} {:>7}",
            self.attack,
            self.set_up,
            self.refused,
            self.attack_requests_per_s,
            self.victim_before_per_s,
            self.victim_during_per_s,
            self.victim_ratio,
            self.healthz_before_us.p99,
            self.healthz_during_us.p99,
            self.healthz_during_us.max,
            self.follower_before_us
                .map_or("-".to_string(), |l| l.p99.to_string()),
            self.follower_during_us
                .map_or("-".to_string(), |l| l.p99.to_string()),
            self.follower_missed,
        )
    }
}

/// Percentiles, µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Worst.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

fn ndjson(call_path: &str, body: String) -> Call {
    Call {
        method: Method::POST,
        path: call_path.to_string(),
        body: Some(("application/x-ndjson", Bytes::from(body))),
    }
}

fn json(method: Method, path: String, body: &serde_json::Value) -> Call {
    Call {
        method,
        path,
        body: Some(("application/json", Bytes::from(body.to_string()))),
    }
}

fn now_ms() -> i64 {
    proxima_engine::clock::Clock::now_ms(&proxima_engine::clock::SystemClock)
}

/// Where the victim and its crowd are: central Helsinki.
const HOME: (f64, f64) = (60.17, 24.94);

/// A point `i` of `n` spread over about 5 km around [`HOME`].
fn spread(i: usize, n: usize) -> (f64, f64) {
    let a = i as f64 * 2.399_963; // the golden angle: an even spread
    let r = 0.045 * ((i as f64 + 0.5) / n.max(1) as f64).sqrt();
    (HOME.0 + r * a.sin(), HOME.1 + 2.0 * r * a.cos())
}

/// Puts `n` travellers around home, public (every one, or every tenth), in batches.
async fn load_crowd(conn: &mut Conn, n: usize, every_public: usize) -> Result<(), BenchError> {
    let ts = now_ms();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let body: String = chunk
            .iter()
            .map(|&i| {
                let (lat, lon) = spread(i, n);
                format!("{{\"id\":\"crowd:{i}\",\"lat\":{lat},\"lon\":{lon},\"ts\":{ts}}}\n")
            })
            .collect();
        expect_ok(conn.send(ndjson("/v1/positions", body)).await?)?;
    }
    for i in (0..n).step_by(every_public.max(1)) {
        let sharing = serde_json::json!({"visibility": "public", "viewers": []});
        expect_ok(
            conn.send(json(
                Method::PUT,
                format!("/v1/travellers/crowd:{i}/sharing"),
                &sharing,
            ))
            .await?,
        )?;
    }
    Ok(())
}

fn expect_ok((status, body): (u16, Bytes)) -> Result<(), BenchError> {
    if status < 300 {
        Ok(())
    } else {
        Err(BenchError::Load {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// What the victim does, one request at a time: its writes, and how many updates each is.
#[derive(Debug, Clone, Copy)]
enum Victim {
    /// Its own position, moving.
    Position,
    /// Batches of 1,000 reports of the crowd.
    Batches,
}

/// What a phase measured: the victim's updates a second, the probe's latencies, and the
/// honest follower's (with the moves it missed), if there was one.
struct Measured {
    rate: f64,
    healthz: Histogram<u64>,
    follower: Option<(Histogram<u64>, u64)>,
}

/// The honest follower's trip, of the victim's traveller of the same id.
const HONEST_TRIP: &str = "victim:trip";

/// The honest follower's trip moves this long after its last move reached the stream:
/// longer than the server's least time between a stream's reads (250 ms, of which a move
/// made sooner waits out the rest), so that what is measured is the server's delay, not
/// that pacing.
const FOLLOWER_PAUSE: Duration = Duration::from_millis(300);

/// How long the honest follower waits for a move's frame before counting it missed.
const FOLLOWER_WAIT: Duration = Duration::from_secs(5);

/// Measures `victim` writing and the probe for `duration`: the victim's updates a second
/// and the probe's latencies; and with `follower`, an honest follower of
/// [`HONEST_TRIP`] (see [`follow_honestly`]).
async fn phase(
    config: &AttackConfig,
    victim: Victim,
    follower: bool,
) -> Result<Measured, BenchError> {
    let end = Instant::now() + config.duration;
    let follower = if follower {
        let config = config.clone();
        Some(tokio::spawn(
            async move { follow_honestly(&config, end).await },
        ))
    } else {
        None
    };
    let updates = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2 {
        let mut conn = Conn::open(config.target, config.victim_key.as_deref()).await?;
        let updates = updates.clone();
        let crowd = config.crowd;
        writers.push(tokio::spawn(async move {
            let mut step = 0u64;
            while Instant::now() < end {
                step += 1;
                let (call, n) = match victim {
                    Victim::Position => {
                        let (lat, lon) = spread((step as usize + w * 7) % 1_000, 1_000);
                        let body = serde_json::json!({"lat": lat, "lon": lon, "ts": now_ms()});
                        (
                            json(Method::PUT, "/v1/travellers/victim/position".into(), &body),
                            1,
                        )
                    }
                    Victim::Batches => {
                        let ts = now_ms();
                        let body: String = (0..1_000)
                            .map(|k| {
                                let i = (step as usize * 1_000 + k + w * 500) % crowd.max(1);
                                let (lat, lon) = spread(i, crowd);
                                format!(
                                    "{{\"id\":\"crowd:{i}\",\"lat\":{},\"lon\":{lon},\"ts\":{ts}}}\n",
                                    lat + 0.0001 * (step % 3) as f64
                                )
                            })
                            .collect();
                        (ndjson("/v1/positions", body), 1_000)
                    }
                };
                match conn.send(call).await {
                    Ok((status, _)) if status < 300 => {
                        updates.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => return Err(BenchError::Io(e)),
                }
            }
            Ok::<(), BenchError>(())
        }));
    }
    let mut probe = Conn::open(config.target, None).await?;
    let mut healthz = super::histogram();
    let started = Instant::now();
    while Instant::now() < end {
        let sent = Instant::now();
        let healthy = Call {
            method: Method::GET,
            path: "/healthz".into(),
            body: None,
        };
        probe.send(healthy).await?;
        let micros = sent.elapsed().as_micros().clamp(1, 60_000_000) as u64;
        healthz.record(micros).expect("clamped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for writer in writers {
        writer.await.map_err(std::io::Error::other)??;
    }
    let rate = updates.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let follower = match follower {
        Some(task) => Some(task.await.map_err(std::io::Error::other)??),
        None => None,
    };
    Ok(Measured {
        rate,
        healthz,
        follower,
    })
}

/// An honest follower of [`HONEST_TRIP`] until `end`: one stream on the trip (on a
/// connection of its own), and the trip's traveller moving [`FOLLOWER_PAUSE`] after each
/// move arrived, on another; for
/// each move, the time from sending the write to the arrival of the stream's frame
/// holding it (µs), and how many moves never arrived within [`FOLLOWER_WAIT`].
async fn follow_honestly(
    config: &AttackConfig,
    end: Instant,
) -> Result<(Histogram<u64>, u64), BenchError> {
    use http_body_util::BodyExt;
    let key = config.victim_key.as_deref();
    let path = format!("/v1/trips/{HONEST_TRIP}/watch?viewer={HONEST_TRIP}");
    let (_stream_conn, mut body) = open_own_stream(config, key, path).await.ok_or_else(|| {
        BenchError::Io(std::io::Error::other(
            "the honest follower's stream was refused",
        ))
    })?;
    let mut writer = Conn::open(config.target, key).await?;
    let mut waited = super::histogram();
    let mut missed = 0u64;
    let mut unread = String::new();
    let mut last_ts = 0i64;
    let mut step = 0usize;
    // The stream read the route when it opened: a move made at once would wait out the
    // rest of that read's frame.
    tokio::time::sleep(FOLLOWER_PAUSE).await;
    while Instant::now() < end {
        step += 1;
        let ts = now_ms().max(last_ts + 1);
        last_ts = ts;
        let (lat, lon) = spread(step % 1_000, 1_000);
        let move_to = serde_json::json!({"lat": lat, "lon": lon, "ts": ts});
        let sent = Instant::now();
        expect_ok(
            writer
                .send(json(
                    Method::PUT,
                    format!("/v1/travellers/{HONEST_TRIP}/position"),
                    &move_to,
                ))
                .await?,
        )?;
        // Frames until the one holding this move's point (`data: {"lat", "lon", "ts"}`).
        let arrived = tokio::time::timeout(FOLLOWER_WAIT, async {
            loop {
                while let Some(at) = unread.find("\n\n") {
                    let event: String = unread.drain(..at + 2).collect();
                    if point_ts(&event) == Some(ts) {
                        return Ok(true);
                    }
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            unread.push_str(&String::from_utf8_lossy(&data));
                        }
                    }
                    Some(Err(e)) => return Err(std::io::Error::other(e)),
                    None => return Ok(false),
                }
            }
        })
        .await;
        match arrived {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Err(BenchError::Io(std::io::Error::other(
                    "the honest follower's stream ended",
                )));
            }
            Ok(Err(e)) => return Err(BenchError::Io(e)),
            Err(_) => missed += 1,
        }
        let micros = sent.elapsed().as_micros().clamp(1, 60_000_000) as u64;
        waited.record(micros).expect("clamped");
        tokio::time::sleep(FOLLOWER_PAUSE).await;
    }
    Ok((waited, missed))
}

/// The `ts` of a server-sent `point` event, if `event` is one.
fn point_ts(event: &str) -> Option<i64> {
    if !event.lines().any(|l| l.trim_end() == "event: point") {
        return None;
    }
    let data = event.lines().find_map(|l| l.strip_prefix("data:"))?;
    let point: serde_json::Value = serde_json::from_str(data.trim()).ok()?;
    point.get("ts")?.as_i64()
}

/// Tells on standard error where a run of `attack` is, with the Unix time in ms (so that a
/// client of its own, run beside, can tell its samples' phases apart).
fn progress(attack: Attack, what: &str) {
    eprintln!("{} {}: {what}", now_ms(), attack.name());
}

/// Runs `attack` and reports what it cost.
pub async fn run(config: &AttackConfig, attack: Attack) -> Result<AttackReport, BenchError> {
    progress(attack, "setting up the victim");
    let mut admin = Conn::open(config.target, config.victim_key.as_deref()).await?;
    let victim = match attack {
        Attack::Roaming => {
            load_crowd(&mut admin, config.crowd, 1).await?;
            let sharing = serde_json::json!({"visibility": "public", "viewers": []});
            let position = serde_json::json!({"lat": HOME.0, "lon": HOME.1, "ts": now_ms()});
            expect_ok(
                admin
                    .send(json(
                        Method::PUT,
                        "/v1/travellers/victim/position".into(),
                        &position,
                    ))
                    .await?,
            )?;
            expect_ok(
                admin
                    .send(json(
                        Method::PUT,
                        "/v1/travellers/victim/sharing".into(),
                        &sharing,
                    ))
                    .await?,
            )?;
            Victim::Position
        }
        Attack::Maps | Attack::Imports => {
            load_crowd(&mut admin, config.crowd, 10).await?;
            Victim::Batches
        }
        Attack::Followers => {
            load_crowd(&mut admin, config.crowd, 10).await?;
            put_own_trip(&mut admin, HONEST_TRIP, "honest", trips_started_at()).await?;
            Victim::Batches
        }
        Attack::Routes | Attack::Narrowings => {
            load_crowd(&mut admin, config.crowd, 10).await?;
            let started_at = trips_started_at();
            for i in 0..config.crowd {
                put_own_trip(&mut admin, &format!("crowd:{i}"), "crowd trip", started_at).await?;
            }
            Victim::Batches
        }
        Attack::Polygons => Victim::Position,
    };
    // A first, unmeasured phase: the server settles after the load (pages touched,
    // judging caught up), so that "before" is not slower for reasons of its own.
    let warm_up = AttackConfig {
        duration: config.duration.min(Duration::from_secs(2)),
        ..config.clone()
    };
    let follower = attack == Attack::Followers;
    progress(attack, "warming up");
    phase(&warm_up, victim, follower).await?;
    progress(attack, "measuring without the attack");
    let before = phase(config, victim, follower).await?;
    progress(attack, "setting up the attack");
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let attackers = attackers_runtime(config.niced_attackers)?;
    let set_up = attackers.spawn({
        let (config, stop) = (config.clone(), stop.clone());
        let sent = sent.clone();
        async move { attack_set_up(&config, attack, stop, sent).await }
    });
    let (set_up, refused, tasks) = set_up.await.map_err(std::io::Error::other)??;
    let held = Held {
        tasks,
        runtime: Some(attackers),
    };
    let sent_before = sent.load(Ordering::Relaxed);
    let during_started = Instant::now();
    progress(attack, "measuring with the attack");
    let during = phase(config, victim, follower).await?;
    progress(attack, "done");
    let attack_requests_per_s = (sent.load(Ordering::Relaxed) - sent_before) as f64
        / during_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(held);
    let missed = |m: &Measured| m.follower.as_ref().map_or(0, |(_, missed)| *missed);
    Ok(AttackReport {
        attack: attack.name(),
        set_up,
        refused,
        victim_before_per_s: before.rate,
        victim_during_per_s: during.rate,
        victim_ratio: during.rate / before.rate.max(f64::MIN_POSITIVE),
        attack_requests_per_s,
        healthz_before_us: Latency::of(&before.healthz),
        healthz_during_us: Latency::of(&during.healthz),
        follower_before_us: before.follower.as_ref().map(|(h, _)| Latency::of(h)),
        follower_during_us: during.follower.as_ref().map(|(h, _)| Latency::of(h)),
        follower_missed: missed(&before) + missed(&during),
    })
}

/// What an attack holds while it runs: the tasks that keep it going and the runtime they
/// run on (both stopped when it is dropped).
struct Held {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The attackers' own runtime, apart from the victim's and the probe's: one thread, niced
/// if `niced`. The attackers stand for clients on other machines; on one small machine,
/// their reading (a thousand streams) would otherwise take the CPU of the victim's client
/// rather than the server's, and the victim would be measured slower for it.
fn attackers_runtime(niced: bool) -> Result<tokio::runtime::Runtime, BenchError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(1)
        .thread_name("attacker")
        .enable_all();
    if niced {
        builder.on_thread_start(proxima_engine::background::lower_this_thread);
    }
    Ok(builder.build()?)
}

/// Sets up (and for the ongoing attacks, starts) `attack`: how many things the attackers
/// got, how many were refused, and what keeps them going.
async fn attack_set_up(
    config: &AttackConfig,
    attack: Attack,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Result<(u64, u64, Vec<tokio::task::JoinHandle<()>>), BenchError> {
    let (mut got, mut refused) = (0, 0);
    let mut streams = Vec::new();
    let mut tasks = Vec::new();
    match attack {
        Attack::Roaming => {
            for (k, key) in config.attacker_keys.iter().enumerate() {
                let mut conn = Conn::open(config.target, Some(key)).await?;
                for f in 0..16 {
                    let body = serde_json::json!({
                        "roaming": {"around": "victim", "radius_m": 5_000},
                        "viewer": format!("attacker:{k}"),
                    });
                    let (status, _) = conn
                        .send(json(Method::PUT, format!("/v1/fences/r{f}"), &body))
                        .await?;
                    if status < 300 { got += 1 } else { refused += 1 }
                }
            }
        }
        Attack::Maps => {
            for (k, key) in config.attacker_keys.iter().enumerate() {
                for _ in 0..16 {
                    let path =
                        format!("/v1/travellers/watch?bbox=-180,-90,180,90&viewer=attacker:{k}");
                    match open_own_stream(config, Some(key), path).await {
                        Some(stream) => {
                            got += 1;
                            streams.push(stream);
                        }
                        None => refused += 1,
                    }
                }
            }
        }
        Attack::Polygons => {
            for a in 0..4usize {
                let key = config.attacker_keys.get(a).cloned();
                let mut conn = Conn::open(config.target, key.as_deref()).await?;
                let (stop, sent) = (stop.clone(), sent.clone());
                let star = polygon(a % 2 == 0);
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let call = Call {
                            method: Method::POST,
                            path: "/v1/pois/within".into(),
                            body: Some(("application/json", star.clone())),
                        };
                        if conn.send(call).await.is_err() {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            got = 4;
        }
        Attack::Routes => {
            for a in 0..4usize {
                let key = config.attacker_keys.get(a).cloned();
                let (mut conn, trip) = own_trip(config, key.as_deref(), a).await?;
                let traveller = trip.clone();
                let ts = now_ms();
                let points: String = (0..100)
                    .map(|k| {
                        let (lat, lon) = spread(k, 100);
                        format!(
                            "{{\"id\":\"{traveller}\",\"lat\":{lat},\"lon\":{lon},\"ts\":{}}}\n",
                            ts - 100_000 + k as i64 * 1_000
                        )
                    })
                    .collect();
                expect_ok(conn.send(ndjson("/v1/positions", points)).await?)?;
                let (stop, sent) = (stop.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let call = Call {
                            method: Method::GET,
                            path: format!("/v1/trips/{trip}/route?viewer={traveller}"),
                            body: None,
                        };
                        if conn.send(call).await.is_err() {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            got = 4;
        }
        Attack::Followers => {
            for a in 0..4usize {
                let key = config.attacker_keys.get(a).cloned();
                let (mut conn, trip) = own_trip(config, key.as_deref(), a).await?;
                let traveller = trip.clone();
                for _ in 0..64 {
                    let path = format!("/v1/trips/{trip}/watch?viewer={traveller}");
                    match open_own_stream(config, key.as_deref(), path).await {
                        Some(stream) => {
                            got += 1;
                            streams.push(stream);
                        }
                        None => refused += 1,
                    }
                }
                let (stop, sent) = (stop.clone(), sent.clone());
                // Moving on from the trip's start, a millisecond a write.
                let first_ts = trips_started_at();
                tasks.push(tokio::spawn(async move {
                    let mut k = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        k += 1;
                        let (lat, lon) = spread(k as usize % 1_000, 1_000);
                        let body = format!(
                            "{{\"id\":\"{traveller}\",\"lat\":{lat},\"lon\":{lon},\"ts\":{}}}\n",
                            first_ts + k
                        );
                        if conn.send(ndjson("/v1/positions", body)).await.is_err() {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
        }
        Attack::Narrowings => {
            for a in 0..4usize {
                let key = config.attacker_keys.get(a).cloned();
                let (mut conn, trip) = own_trip(config, key.as_deref(), a).await?;
                let first_ts = trips_started_at();
                store_points(&mut conn, &trip, first_ts, NARROWED_POINTS).await?;
                // Read once: the points are settled before the narrowings start.
                let (status, _) = conn
                    .send(Call {
                        method: Method::GET,
                        path: format!("/v1/trips/{trip}?viewer={trip}"),
                        body: None,
                    })
                    .await?;
                if status != 200 {
                    return Err(BenchError::Io(std::io::Error::other(format!(
                        "the narrowed trip's read: HTTP {status}"
                    ))));
                }
                let (stop, sent) = (stop.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    let mut k = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        k += 1;
                        let body = serde_json::json!({
                            "traveller": trip,
                            "title": "mine",
                            "started_at": first_ts + k * NARROWED_SPACING_MS,
                        });
                        match conn
                            .send(json(Method::PUT, format!("/v1/trips/{trip}"), &body))
                            .await
                        {
                            Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                            Err(_) => return,
                        };
                    }
                }));
            }
            got = 4;
        }
        Attack::Imports => {
            for i in 0..530usize {
                let key = config.attacker_keys[i % config.attacker_keys.len().max(1)].clone();
                let target = config.target;
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let _ = trickle(target, &key, stop).await;
                }));
            }
            got = 530;
        }
    }
    // The attacks that hold streams keep reading them, so that they are not reset as
    // stalled (the attacker pays for what it asked for).
    let mut readers = Vec::new();
    for (conn, body) in streams {
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            use http_body_util::BodyExt;
            let _conn = conn;
            let mut body = body;
            while !stop.load(Ordering::Relaxed) {
                if body.frame().await.is_none() {
                    return;
                }
            }
        }));
    }
    tasks.extend(readers);
    Ok((got, refused, tasks))
}

/// A stream at `path`, opened as `key` on a connection of its own: the connection and the
/// stream's body, or `None` when the server refused it (a connection the server will not
/// take, past its per-address limit, is refused as much as a 429).
async fn open_own_stream(
    config: &AttackConfig,
    key: Option<&str>,
    path: String,
) -> Option<(Conn, hyper::body::Incoming)> {
    let mut conn = Conn::open(config.target, key).await.ok()?;
    let call = Call {
        method: Method::GET,
        path,
        body: None,
    };
    match conn.open_stream(call).await {
        Ok((status, body)) if status < 300 => Some((conn, body)),
        _ => None,
    }
}

/// When the attackers' and the crowd's trips started: a day ago.
fn trips_started_at() -> i64 {
    now_ms() - 86_400_000
}

/// The points of each trip the `narrowings` attack narrows, and the time between two.
pub const NARROWED_POINTS: usize = 500_000;
const NARROWED_SPACING_MS: i64 = 100;

/// Stores `n` points on `trip`'s traveller (of the same id), [`NARROWED_SPACING_MS`] apart
/// from `first_ts`, a walk around [`HOME`], in batches of 50,000.
async fn store_points(
    conn: &mut Conn,
    trip: &str,
    first_ts: i64,
    n: usize,
) -> Result<(), BenchError> {
    const BATCH: usize = 50_000;
    for from in (0..n).step_by(BATCH) {
        let body: String = (from..(from + BATCH).min(n))
            .map(|k| {
                let (lat, lon) = spread(k % 10_000, 10_000);
                format!(
                    "{{\"id\":\"{trip}\",\"lat\":{lat},\"lon\":{lon},\"ts\":{}}}\n",
                    first_ts + k as i64 * NARROWED_SPACING_MS
                )
            })
            .collect();
        expect_ok(conn.send(ndjson("/v1/positions", body)).await?)?;
    }
    Ok(())
}

/// Attacker `a`'s connection (with `key`) and a trip of its own, `attacker:<a>`, of its
/// traveller of the same id, put and going on.
async fn own_trip(
    config: &AttackConfig,
    key: Option<&str>,
    a: usize,
) -> Result<(Conn, String), BenchError> {
    let mut conn = Conn::open(config.target, key).await?;
    let id = format!("attacker:{a}");
    put_own_trip(&mut conn, &id, "mine", trips_started_at()).await?;
    Ok((conn, id))
}

/// Puts trip `id` of the traveller of the same id, titled `title`, going on since
/// `started_at`.
async fn put_own_trip(
    conn: &mut Conn,
    id: &str,
    title: &str,
    started_at: i64,
) -> Result<(), BenchError> {
    let body = serde_json::json!({"traveller": id, "title": title, "started_at": started_at});
    expect_ok(
        conn.send(json(Method::PUT, format!("/v1/trips/{id}"), &body))
            .await?,
    )
}

/// The body of a 10,000-vertex area query: a self-crossing star, or a valid circle.
fn polygon(star: bool) -> Bytes {
    let n = 9_999usize;
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let k = if star { i * 4_999 % n } else { i };
            let a = k as f64 / n as f64 * std::f64::consts::TAU;
            [HOME.1 + 0.05 * a.cos(), HOME.0 + 0.025 * a.sin()]
        })
        .collect();
    ring.push(ring[0]);
    let body = serde_json::json!({"area": {"type": "Polygon", "coordinates": [ring]}, "limit": 10});
    Bytes::from(body.to_string())
}

/// An import sent a byte every 10 s, until `stop`.
async fn trickle(target: SocketAddr, key: &str, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(target).await?;
    let head = format!(
        "POST /v1/pois/import?format=csv HTTP/1.1\r\nhost: {target}\r\nauthorization: Bearer {key}\r\ncontent-type: text/csv\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(b"1\r\ni\r\n").await?;
        for _ in 0..100 {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
