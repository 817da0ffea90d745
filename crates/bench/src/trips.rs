//! The stage of the `trips` and `routes` workloads: every traveller on a trip, and
//! followers streaming some of them.
//!
//! Set up once per run (before the first of the two workloads): a trip
//! `bench:trip:<i>` for every traveller `bench:t:<i>`, started a day ago and going on, so
//! every position the `trips` workload sends joins a route on the server's disk. The
//! server's resident memory before and after gives the bytes a running trip costs. Then
//! `--subscribers` follower streams (`GET /v1/trips/{id}/watch`) on trips spread over the
//! travellers count the points they are told while the workloads run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::BodyExt;
use hyper::Method;

use super::BenchError;
use super::fences::{rss, send_all};
use super::http::{Call, Conn};
use super::report::TripsReport;
use super::workload::Scenario;
use crate::args::BenchConfig;

/// How long before the run the trips start: a day.
const STARTED_BEFORE_MS: i64 = 86_400_000;

/// The trips, and the follower streams on them.
pub struct TripsStage {
    trips: usize,
    memory_per_trip: Option<f64>,
    points: Arc<AtomicU64>,
    streams: Vec<tokio::task::JoinHandle<()>>,
    opened: usize,
}

impl TripsStage {
    /// Puts a trip for each traveller (a replace when it is there from an earlier run),
    /// measuring the memory they take, and opens the follower streams.
    pub async fn set_up(
        addr: SocketAddr,
        config: &BenchConfig,
        scenario: &Scenario,
    ) -> Result<Self, BenchError> {
        let key = config.key.clone();
        let n = scenario.travellers.len();
        let before = rss(addr, key.as_deref()).await?;
        let started_at = scenario.ts_for(0) - STARTED_BEFORE_MS;
        send_all(addr, key.as_deref(), "trips", n, move |i| {
            Some(Call {
                method: Method::PUT,
                path: format!("/v1/trips/bench:trip:{i}"),
                body: Some((
                    "application/json",
                    bytes::Bytes::from(format!(
                        "{{\"traveller\":\"bench:t:{i}\",\"title\":\"Bench trip {i}\",\"started_at\":{started_at}}}"
                    )),
                )),
            })
        })
        .await?;
        let after = rss(addr, key.as_deref()).await?;
        let memory_per_trip = match (before, after) {
            (Some(b), Some(a)) if n > 0 => Some(a.saturating_sub(b) as f64 / n as f64),
            _ => None,
        };
        let points = Arc::new(AtomicU64::new(0));
        let mut streams = Vec::new();
        let followed = config.subscribers.min(n);
        for s in 0..followed {
            let i = s * (n / followed.max(1)).max(1);
            let mut conn = Conn::open(addr, key.as_deref()).await?;
            let call = Call {
                method: Method::GET,
                path: format!(
                    "/v1/trips/bench:trip:{i}/watch?viewer=bench:t:{i}&after={}",
                    scenario.ts_for(i)
                ),
                body: None,
            };
            let (status, mut body) = conn.open_stream(call).await?;
            if status != 200 {
                return Err(BenchError::Load {
                    status,
                    body: "a follower stream was refused".into(),
                });
            }
            let points = points.clone();
            streams.push(tokio::spawn(async move {
                let _conn = conn;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Some(data) = frame.data_ref() {
                        let told = data
                            .windows(b"event: point".len())
                            .filter(|w| *w == b"event: point")
                            .count();
                        points.fetch_add(told as u64, Ordering::Relaxed);
                    }
                }
            }));
        }
        Ok(Self {
            trips: n,
            memory_per_trip,
            points,
            streams,
            opened: followed,
        })
    }

    /// What the stage holds, and the points its streams were told so far.
    pub fn report(&self) -> TripsReport {
        TripsReport {
            trips: self.trips,
            memory_per_trip_bytes: self.memory_per_trip,
            follower_streams: self.opened,
            points_streamed: self.points.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TripsStage {
    fn drop(&mut self) {
        for stream in &self.streams {
            stream.abort();
        }
    }
}
