//! Event latency in the fence workloads: when each update was acknowledged, when each event
//! about it reached a subscriber over Server-Sent Events, and the difference.
//!
//! Each traveller's reports have rising timestamps ([`Scenario::ts_for`]), and every event
//! names its traveller and the timestamp of that traveller's report, so an event is matched
//! to the acknowledgement of the update that caused it through the traveller's last
//! acknowledged report. A roaming fence's event may be caused by its traveller moving
//! instead: the event says which report of that traveller it was judged with (`around`),
//! and the later of the two acknowledgements is the cause. An event that arrives before its
//! update's acknowledgement counts as 1 µs; one whose traveller has moved again since, so
//! that its acknowledgement is no longer known, is received but not timed (the report says
//! how many were timed).
//!
//! [`Scenario::ts_for`]: super::workload::Scenario::ts_for

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::Method;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::BenchError;
use super::http::{Call, Conn};
use super::report::{EventsReport, Percentiles};
use super::workload::Op;

/// The prefix of the travellers' ids: `bench:t:<n>`.
const TRAVELLER: &str = "bench:t:";
/// The prefix of the roaming fences' ids: `bench:roam:<n>`, around traveller `n`.
const ROAMING_FENCE: &str = "bench:roam:";

/// Each traveller's last two acknowledged reports: their timestamps and when.
pub struct Acks {
    epoch: Instant,
    /// Slots `2i` and `2i + 1` are traveller `i`'s.
    ts: Box<[AtomicI64]>,
    at_us: Box<[AtomicU64]>,
}

/// What is known of the acknowledgement of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    /// Acknowledged at this many microseconds after the epoch.
    At(u64),
    /// Not yet: the event came first.
    NotYet,
    /// The traveller has been acknowledged twice since; when this one was is forgotten.
    Forgotten,
}

impl Acks {
    /// No acknowledgement yet, for `travellers` travellers; times count from now.
    pub fn new(travellers: usize) -> Self {
        Self {
            epoch: Instant::now(),
            ts: (0..2 * travellers)
                .map(|_| AtomicI64::new(i64::MIN))
                .collect(),
            at_us: (0..2 * travellers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// Notes that the updates of `op` were acknowledged at `at`.
    pub fn acked(&self, op: &Op, at: Instant) {
        let at_us = self.micros(at);
        let note = |traveller: usize, ts: i64| {
            let (a, b) = (2 * traveller, 2 * traveller + 1);
            if b >= self.ts.len() {
                return;
            }
            // Over the older of the two.
            let slot = if self.ts[a].load(Ordering::Relaxed) <= self.ts[b].load(Ordering::Relaxed) {
                a
            } else {
                b
            };
            self.at_us[slot].store(at_us, Ordering::Relaxed);
            self.ts[slot].store(ts, Ordering::Release);
        };
        match op {
            Op::Positions(moves) => moves.iter().for_each(|m| note(m.traveller, m.ts)),
            Op::Position(m) => note(m.traveller, m.ts),
            _ => {}
        }
    }

    /// What is known now of the acknowledgement of `traveller`'s report of `ts`.
    fn of(&self, traveller: usize, ts: i64) -> Acked {
        let (a, b) = (2 * traveller, 2 * traveller + 1);
        if b >= self.ts.len() {
            return Acked::Forgotten;
        }
        let (ta, tb) = (
            self.ts[a].load(Ordering::Acquire),
            self.ts[b].load(Ordering::Acquire),
        );
        if ta == ts {
            Acked::At(self.at_us[a].load(Ordering::Relaxed))
        } else if tb == ts {
            Acked::At(self.at_us[b].load(Ordering::Relaxed))
        } else if ts > ta.max(tb) {
            Acked::NotYet
        } else {
            Acked::Forgotten
        }
    }

    /// When the cause of an event arriving now was acknowledged: the later acknowledgement
    /// of the reports (`(traveller, ts)`) it was judged with, `arrived` if one is not yet.
    /// `None` if one is forgotten.
    fn cause(&self, reports: &[(usize, i64)], arrived: u64) -> Option<u64> {
        let mut cause = 0;
        for &(traveller, ts) in reports {
            match self.of(traveller, ts) {
                Acked::At(at) => cause = cause.max(at),
                Acked::NotYet => cause = cause.max(arrived),
                Acked::Forgotten => return None,
            }
        }
        Some(cause)
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Received {
    /// Per event: when its cause was acknowledged, if known, and when it arrived
    /// (microseconds since the epoch).
    events: Vec<(Option<u64>, u64)>,
    /// Resets (the subscriber fell behind and started again).
    resets: u64,
}

/// The event streams of a fence workload, each read by a task of its own.
pub struct Subscribers {
    acks: Arc<Acks>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Result<Received, BenchError>>>,
}

/// What an event's data says of its cause; other members are not read.
#[derive(Deserialize)]
struct EventData {
    fence: String,
    traveller: Option<String>,
    ts: Option<i64>,
    around: Option<AroundData>,
}

#[derive(Deserialize)]
struct AroundData {
    ts: i64,
}

impl EventData {
    /// The reports it was judged with, as `(traveller, ts)`: the traveller's, and for a
    /// roaming fence its centre's.
    fn reports(&self) -> Vec<(usize, i64)> {
        let number = |id: &str, prefix: &str| id.strip_prefix(prefix)?.parse::<usize>().ok();
        let mut reports = Vec::with_capacity(2);
        if let (Some(t), Some(ts)) = (self.traveller.as_deref(), self.ts)
            && let Some(i) = number(t, TRAVELLER)
        {
            reports.push((i, ts));
        }
        if let (Some(around), Some(i)) = (&self.around, number(&self.fence, ROAMING_FENCE)) {
            reports.push((i, around.ts));
        }
        reports
    }
}

impl Subscribers {
    /// Opens one stream on each path (`/v1/events?fence=...`), each checked to answer 200.
    pub async fn open(
        addr: SocketAddr,
        key: Option<&str>,
        paths: Vec<String>,
        acks: Arc<Acks>,
    ) -> Result<Self, BenchError> {
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(paths.len());
        for path in paths {
            let body = subscribe(addr, key, &path).await?;
            let (acks, stop, key) = (acks.clone(), stop.clone(), key.map(String::from));
            tasks.push(tokio::spawn(async move {
                read(addr, key, path, body, &acks, &stop).await
            }));
        }
        Ok(Self { acks, stop, tasks })
    }

    /// Stops reading (after a moment for events in flight) and reports the events, timing
    /// those whose cause was acknowledged within `window`.
    pub async fn finish(
        self,
        window: std::ops::Range<Instant>,
    ) -> Result<EventsReport, BenchError> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop.cancel();
        let window = self.acks.micros(window.start)..=self.acks.micros(window.end);
        let mut latency =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        let (mut received, mut resets) = (0, 0);
        for task in self.tasks {
            let seen = task.await.map_err(std::io::Error::other)??;
            received += seen.events.len() as u64;
            resets += seen.resets;
            for (cause, arrived) in seen.events {
                if let Some(cause) = cause.filter(|c| window.contains(c)) {
                    // An event that came before its acknowledgement counts as 1 µs.
                    let micros = arrived.saturating_sub(cause).clamp(1, 60_000_000);
                    latency.record(micros).expect("clamped into range");
                }
            }
        }
        Ok(EventsReport {
            fences: 0,
            followed: 0,
            received,
            matched: latency.len(),
            resets,
            latency_us: (!latency.is_empty()).then(|| Percentiles::of(&latency)),
            bytes_per_fence: None,
        })
    }
}

/// Opens the stream at `path`; its body as it arrives.
async fn subscribe(
    addr: SocketAddr,
    key: Option<&str>,
    path: &str,
) -> Result<hyper::body::Incoming, BenchError> {
    let mut conn = Conn::open(addr, key).await?;
    let call = Call {
        method: Method::GET,
        path: path.to_string(),
        body: None,
    };
    let (status, body) = conn.open_stream(call).await?;
    if status != 200 {
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(BenchError::Load {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    // The connection's task keeps the stream flowing without `conn`.
    Ok(body)
}

/// Reads a stream's events until `stop`; after a reset (which ends the stream), opens it
/// again.
async fn read(
    addr: SocketAddr,
    key: Option<String>,
    path: String,
    mut body: hyper::body::Incoming,
    acks: &Acks,
    stop: &CancellationToken,
) -> Result<Received, BenchError> {
    let mut seen = Received::default();
    let mut buffer = String::new();
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => return Ok(seen),
            frame = body.frame() => frame,
        };
        let arrived = acks.micros(Instant::now());
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    buffer.push_str(&String::from_utf8_lossy(data));
                }
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    match parse(&block) {
                        Block::Reset => seen.resets += 1,
                        Block::Event(data) => {
                            let cause = acks.cause(&data.reports(), arrived);
                            seen.events.push((cause, arrived));
                        }
                        Block::Other => {}
                    }
                }
            }
            Some(Err(e)) => return Err(std::io::Error::other(e).into()),
            None => {
                if stop.is_cancelled() {
                    return Ok(seen);
                }
                // The server ended the stream (after a reset): follow again from now.
                buffer.clear();
                body = subscribe(addr, key.as_deref(), &path).await?;
            }
        }
    }
}

/// One block of an event stream.
enum Block {
    /// A reset.
    Reset,
    /// A fence event.
    Event(EventData),
    /// A keep-alive comment, or anything else.
    Other,
}

fn parse(block: &str) -> Block {
    let mut kind = "message";
    let mut data = "";
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data = v.trim();
        }
    }
    match (kind, serde_json::from_str::<EventData>(data)) {
        ("reset", _) => Block::Reset,
        ("deleted", _) | (_, Err(_)) => Block::Other,
        (_, Ok(data)) => Block::Event(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workload::Move;

    fn m(traveller: usize, ts: i64) -> Move {
        Move {
            traveller,
            lat: 0.0,
            lon: 0.0,
            ts,
        }
    }

    #[test]
    fn a_cause_is_the_later_acknowledgement_of_the_reports_an_event_was_judged_with() {
        let acks = Acks::new(4);
        let at = |ms| acks.epoch + Duration::from_millis(ms);
        acks.acked(&Op::Positions(vec![m(1, 100), m(2, 200)]), at(5));
        acks.acked(&Op::Position(m(2, 201)), at(7));
        assert_eq!(acks.cause(&[(1, 100)], 9_000), Some(5_000));
        assert_eq!(acks.cause(&[(1, 100), (2, 201)], 9_000), Some(7_000));
        assert_eq!(acks.cause(&[(2, 200)], 9_000), Some(5_000), "two are kept");
        assert_eq!(acks.cause(&[(1, 101)], 9_000), Some(9_000), "not yet: now");
        acks.acked(&Op::Position(m(2, 202)), at(8));
        assert_eq!(acks.cause(&[(2, 200)], 9_000), None, "forgotten");
        assert_eq!(acks.cause(&[(3, 1)], 9_000), Some(9_000));
        assert_eq!(
            acks.cause(&[(9, 1)], 9_000),
            None,
            "not a traveller of the run"
        );
    }

    #[test]
    fn event_blocks_name_their_reports_and_resets_are_told_apart() {
        let enter = "id: 1-1\nevent: enter\ndata: {\"fence\":\"bench:fence:3\",\"traveller\":\"bench:t:42\",\"ts\":7}\n\n";
        let Block::Event(data) = parse(enter) else {
            panic!("an event");
        };
        assert_eq!(data.reports(), [(42, 7)]);
        let nearby = "event: nearby\ndata: {\"fence\":\"bench:roam:40\",\"traveller\":\"bench:t:42\",\"ts\":7,\"around\":{\"lat\":1,\"lon\":2,\"ts\":9}}\n\n";
        let Block::Event(data) = parse(nearby) else {
            panic!("an event");
        };
        assert_eq!(data.reports(), [(42, 7), (40, 9)]);
        assert!(matches!(parse(": keep-alive\n\n"), Block::Other));
        assert!(matches!(
            parse("event: reset\ndata: {\"reason\":\"behind\"}\n\n"),
            Block::Reset
        ));
    }
}
