//! The stage of the fence workloads, set up before each runs and taken down after.
//!
//! - `fences`: `--fences` static fences (10,000 by default) around city centres, half of
//!   them circles and half 50-vertex polygons, of 200 m to 5 km (log-uniform), seeing public
//!   travellers.
//! - `roaming`: a 500 m roaming fence around every tenth traveller, whose viewer is that
//!   traveller, and the nine travellers after it sharing with it (friends). The benchmark's
//!   travellers travel in such groups of ten ([`grouped`]), so friends are near each other
//!   and walk in and out of each other's fences. `--roaming-every 1` puts one around every
//!   traveller instead, everyone public: each fence sees everyone within 500 m.
//!
//! Both then follow some of the fences' events (`--subscribers` streams of 100 fences each)
//! while positions stream, and measure each event's latency ([`super::events`]). The stage
//! also measures the server's memory per fence: its resident memory before and after the
//! fences were put, over their number.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use hyper::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::data::Places;
use super::events::{Acks, Subscribers};
use super::http::{Call, Conn};
use super::load::expect_ok;
use super::report::{EventsReport, FenceMemory};
use super::workload::{Scenario, Workload};
use super::{BenchError, show_line};
use crate::args::BenchConfig;
use proxima_engine::geometry::LatLon;

/// Every this many travellers, one has a roaming fence; the others after it share with it.
pub const ROAMING_EVERY: usize = 10;
/// The roaming fences' radius, metres.
pub const ROAMING_RADIUS_M: f64 = 500.0;
/// Fences per stream: the server's default `--max-fences-per-stream`.
const FENCES_PER_STREAM: usize = 100;
/// Connections that put the fences and the sharing.
const SET_UP_CONNECTIONS: usize = 8;
/// Vertices of the polygon fences.
const POLYGON_VERTICES: usize = 50;

/// `n` travellers in groups of [`ROAMING_EVERY`], as families and friends travel: the first
/// near a city drawn by population, the others within about 700 m of it.
pub fn grouped(places: &mut Places, n: usize) -> Vec<LatLon> {
    let mut out: Vec<LatLon> = Vec::with_capacity(n);
    for i in 0..n {
        let p = match i % ROAMING_EVERY {
            0 => places.next(0.1),
            _ => places.near(out[i - i % ROAMING_EVERY], 0.0063),
        };
        out.push(p);
    }
    out
}

/// Fences put for a workload, and the streams following some of them.
pub struct Stage {
    addr: SocketAddr,
    key: Option<String>,
    ids: Arc<Vec<String>>,
    acks: Arc<Acks>,
    subscribers: Subscribers,
    followed: usize,
    memory: Vec<FenceMemory>,
    keep: bool,
}

impl Stage {
    /// Puts the workload's fences (and, for `roaming`, the sharing), measures the memory
    /// they take, and opens the subscribers.
    pub async fn set_up(
        addr: SocketAddr,
        config: &BenchConfig,
        scenario: &Scenario,
        workload: Workload,
    ) -> Result<Self, BenchError> {
        let key = config.key.clone();
        // The fences by kind, each kind put in turn so that its memory can be told apart.
        let kinds: Vec<(&'static str, Vec<(String, String)>)> = match workload {
            Workload::Roaming => {
                let n = scenario.travellers.len();
                let every = config.roaming_every.max(1);
                let owner = move |j: usize| j - j % every;
                send_all(addr, key.as_deref(), "sharing", n, move |j| {
                    let body = match every {
                        // A fence around everyone: everyone public, each fence sees all.
                        1 => "{\"visibility\":\"public\"}".to_string(),
                        _ if j.is_multiple_of(every) => return None,
                        _ => format!(
                            "{{\"visibility\":\"friends\",\"viewers\":[\"bench:t:{}\"]}}",
                            owner(j)
                        ),
                    };
                    Some(Call {
                        method: Method::PUT,
                        path: format!("/v1/travellers/bench:t:{j}/sharing"),
                        body: json(body),
                    })
                })
                .await?;
                let fences = (0..n)
                    .step_by(every)
                    .map(|i| {
                        let body = format!(
                            "{{\"roaming\":{{\"around\":\"bench:t:{i}\",\"radius_m\":{ROAMING_RADIUS_M}}},\"viewer\":\"bench:t:{i}\"}}"
                        );
                        (format!("bench:roam:{i}"), body)
                    })
                    .collect();
                vec![("roaming, 500 m", fences)]
            }
            _ => {
                let (polygons, circles): (Vec<_>, Vec<_>) = (0..config.fences)
                    .map(|k| {
                        let centre = scenario.centres[k % scenario.centres.len()];
                        let body = static_fence(centre, k, config.seed);
                        (format!("bench:fence:{k}"), body)
                    })
                    .partition(|(_, body)| body.contains("\"Polygon\""));
                vec![
                    ("static polygon, 50 vertices", polygons),
                    ("static circle", circles),
                ]
            }
        };
        let mut ids: Vec<String> = Vec::new();
        let mut memory = Vec::new();
        for (kind, fences) in kinds {
            let before = rss(addr, key.as_deref()).await?;
            let fences = Arc::new(fences);
            let count = fences.len();
            {
                let fences = fences.clone();
                send_all(addr, key.as_deref(), "fences", count, move |k| {
                    Some(Call {
                        method: Method::PUT,
                        path: format!("/v1/fences/{}", fences[k].0),
                        body: json(fences[k].1.clone()),
                    })
                })
                .await?;
            }
            let after = rss(addr, key.as_deref()).await?;
            if let (Some(b), Some(a), true) = (before, after, count > 0) {
                memory.push(FenceMemory {
                    kind: kind.to_string(),
                    fences: count,
                    bytes_per_fence: (a as f64 - b as f64) / count as f64,
                });
            }
            ids.extend(fences.iter().map(|(id, _)| id.clone()));
        }
        let ids = Arc::new(ids);
        // Followed: spread over every kind.
        let followed = ids.len().min(config.subscribers * FENCES_PER_STREAM);
        let every = ids.len().checked_div(followed).unwrap_or(1).max(1);
        let chosen: Vec<&String> = ids.iter().step_by(every).take(followed).collect();
        let paths: Vec<String> = chosen
            .chunks(FENCES_PER_STREAM)
            .map(|chunk| {
                let query: Vec<String> = chunk.iter().map(|id| format!("fence={id}")).collect();
                format!("/v1/events?{}", query.join("&"))
            })
            .collect();
        let acks = Arc::new(Acks::new(scenario.travellers.len()));
        let subscribers = Subscribers::open(addr, key.as_deref(), paths, acks.clone()).await?;
        Ok(Self {
            addr,
            key,
            ids,
            acks,
            subscribers,
            followed,
            memory,
            keep: config.keep_fences,
        })
    }

    /// Where the workers note each acknowledgement.
    pub fn acks(&self) -> Arc<Acks> {
        self.acks.clone()
    }

    /// Stops the subscribers, deletes the fences (unless `--keep-fences`), and reports the
    /// events of updates sent within `window`.
    pub async fn take_down(
        self,
        window: std::ops::Range<Instant>,
    ) -> Result<EventsReport, BenchError> {
        let mut report = self.subscribers.finish(window).await?;
        let ids = self.ids.clone();
        let count = if self.keep { 0 } else { ids.len() };
        send_all(
            self.addr,
            self.key.as_deref(),
            "deleting fences",
            count,
            move |k| {
                Some(Call {
                    method: Method::DELETE,
                    path: format!("/v1/fences/{}", ids[k]),
                    body: None,
                })
            },
        )
        .await?;
        report.fences = self.ids.len();
        report.followed = self.followed;
        report.memory = self.memory;
        Ok(report)
    }
}

fn json(text: String) -> Option<(&'static str, Bytes)> {
    Some(("application/json", Bytes::from(text)))
}

/// Fence `k` around `centre`: a circle when `k` is even, else a 50-vertex star polygon, of a
/// radius from 200 m to 5 km (log-uniform), seeing public travellers. A polygon that would
/// cross the antimeridian or reach a pole is a circle instead.
pub fn static_fence(centre: LatLon, k: usize, seed: u64) -> String {
    let mut rng = SmallRng::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let radius_m = 200.0 * 25f64.powf(rng.random::<f64>());
    let circle = || {
        format!(
            "{{\"area\":{{\"type\":\"Circle\",\"center\":[{},{}],\"radius_m\":{radius_m:.1}}},\"viewer\":null}}",
            centre.lon, centre.lat
        )
    };
    if k.is_multiple_of(2) {
        return circle();
    }
    let m_per_lat = 111_195.0;
    let m_per_lon = m_per_lat * centre.lat.to_radians().cos();
    let step = std::f64::consts::TAU / POLYGON_VERTICES as f64;
    let mut ring: Vec<(f64, f64)> = (0..POLYGON_VERTICES)
        .map(|i| {
            let r = radius_m * rng.random_range(0.8..1.2);
            let a = i as f64 * step;
            (
                centre.lon + r * a.cos() / m_per_lon.max(1.0),
                centre.lat + r * a.sin() / m_per_lat,
            )
        })
        .collect();
    if ring
        .iter()
        .any(|&(lon, lat)| lon.abs() >= 180.0 || lat.abs() >= 90.0)
    {
        return circle();
    }
    ring.push(ring[0]);
    let positions: Vec<String> = ring
        .iter()
        .map(|(lon, lat)| format!("[{lon:.7},{lat:.7}]"))
        .collect();
    format!(
        "{{\"area\":{{\"type\":\"Polygon\",\"coordinates\":[[{}]]}},\"viewer\":null}}",
        positions.join(",")
    )
}

/// Sends `make(i)` for every `i` below `total` that makes a call, over a few connections at
/// once, each answer checked; shows progress on a terminal.
pub(crate) async fn send_all(
    addr: SocketAddr,
    key: Option<&str>,
    label: &'static str,
    total: usize,
    make: impl Fn(usize) -> Option<Call> + Send + Sync + 'static,
) -> Result<(), BenchError> {
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(SET_UP_CONNECTIONS);
    for _ in 0..SET_UP_CONNECTIONS {
        let (make, next, key) = (make.clone(), next.clone(), key.map(String::from));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, key.as_deref()).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), BenchError>(());
                }
                if let Some(call) = make(i) {
                    expect_ok(&mut conn, call).await?;
                }
            }
        }));
    }
    let shown = tokio::spawn({
        let next = next.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let done = next.load(Ordering::Relaxed).min(total);
                show_line(&format!("{label}: {done} of {total}"));
            }
        }
    });
    let mut result = Ok(());
    for task in tasks {
        if let Err(e) = task.await.map_err(std::io::Error::other)? {
            result = Err(e);
        }
    }
    shown.abort();
    result
}

/// The server's resident memory, from `/v1/stats`, if it says.
pub(crate) async fn rss(addr: SocketAddr, key: Option<&str>) -> Result<Option<u64>, BenchError> {
    let mut conn = Conn::open(addr, key).await?;
    let call = Call {
        method: Method::GET,
        path: "/v1/stats".into(),
        body: None,
    };
    let (status, body) = conn.send(call).await?;
    if status != 200 {
        return Ok(None);
    }
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(stats["memory"]["rss_bytes"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxima_engine::geometry::area::{Area, MAX_AREA_VERTICES};
    use proxima_engine::geometry::haversine_m;

    #[test]
    fn static_fences_are_valid_areas_of_200_m_to_5_km_around_their_centre() {
        let mut places = Places::new(3);
        for k in 0..400 {
            let centre = places.next(0.05);
            let body: serde_json::Value =
                serde_json::from_str(&static_fence(centre, k, 1)).expect("JSON");
            let a = &body["area"];
            let area = match a["type"].as_str() {
                Some("Circle") => {
                    let r = a["radius_m"].as_f64().expect("a radius");
                    assert!((200.0..=5_000.0).contains(&r), "{r}");
                    let c = &a["center"];
                    let c = LatLon::new(c[1].as_f64().expect("lat"), c[0].as_f64().expect("lon"));
                    Area::circle(c.expect("valid"), r)
                }
                _ => Area::polygon(
                    serde_json::from_value(a["coordinates"].clone()).expect("rings"),
                    MAX_AREA_VERTICES,
                ),
            }
            .expect("valid");
            assert!(area.vertices() <= MAX_AREA_VERTICES);
            assert!(area.contains(centre), "fence {k} holds its centre");
            let far = LatLon::new((centre.lat + 0.06).min(90.0), centre.lon).expect("valid");
            assert!(haversine_m(centre, far) > 6_000.0);
            assert!(
                !area.contains(far),
                "fence {k} reaches no farther than 6 km"
            );
        }
    }

    #[test]
    fn grouped_travellers_are_within_a_kilometre_of_their_group_head() {
        let mut places = Places::new(4);
        let t = grouped(&mut places, 1_000);
        for (i, p) in t.iter().enumerate() {
            let head = t[i - i % ROAMING_EVERY];
            assert!(haversine_m(head, *p) < 1_000.0, "{i}");
        }
    }
}
