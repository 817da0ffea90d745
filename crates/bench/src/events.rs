//! Event latency in the fence workloads: when each update was sent and acknowledged, when
//! each event about it reached a subscriber over Server-Sent Events, and the differences.
//!
//! Each traveller's reports have rising timestamps ([`Scenario::ts_for`]), and every event
//! names its traveller and the timestamp of that traveller's report, so an event is matched
//! to the acknowledgement of the update that caused it through the traveller's last
//! acknowledged report. A roaming fence's event may be caused by its traveller moving
//! instead: the event says which report of that traveller it was judged with (`around`),
//! and the later of the two is the cause (a report from before the run, such as a friend
//! who has not moved since, is never it). An event usually arrives before its batch's
//! acknowledgement (the server publishes as it applies), and then counts as 1 µs from the
//! acknowledgement; the latency from the send bounds it from above. An event whose
//! traveller has sent two more reports since is received but not timed (the report says
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

/// Each traveller's last two reports sent: their timestamps, when each was sent, and when
/// it was acknowledged.
pub struct Acks {
    epoch: Instant,
    /// Slots `2i` and `2i + 1` are traveller `i`'s.
    ts: Box<[AtomicI64]>,
    sent_us: Box<[AtomicU64]>,
    /// [`NOT_YET`] until acknowledged.
    acked_us: Box<[AtomicU64]>,
}

const NOT_YET: u64 = u64::MAX;

/// When the reports an event was judged with were sent and acknowledged (the later of each),
/// microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    sent: u64,
    acked: u64,
}

impl Acks {
    /// Nothing sent yet, for `travellers` travellers; times count from now.
    pub fn new(travellers: usize) -> Self {
        let slots = || (0..2 * travellers).map(|_| AtomicU64::new(0)).collect();
        Self {
            epoch: Instant::now(),
            ts: (0..2 * travellers)
                .map(|_| AtomicI64::new(i64::MIN))
                .collect(),
            sent_us: slots(),
            acked_us: slots(),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }

    fn moves(op: &Op) -> &[super::workload::Move] {
        match op {
            Op::Positions(moves) => moves,
            Op::Position(m) => std::slice::from_ref(m),
            _ => &[],
        }
    }

    /// Notes that the updates of `op` are being sent now (`at`), over each traveller's
    /// older slot.
    pub fn sent(&self, op: &Op, at: Instant) {
        let at_us = self.micros(at);
        for m in Self::moves(op) {
            let (a, b) = (2 * m.traveller, 2 * m.traveller + 1);
            if b >= self.ts.len() {
                continue;
            }
            let slot = if self.ts[a].load(Ordering::Relaxed) <= self.ts[b].load(Ordering::Relaxed) {
                a
            } else {
                b
            };
            self.sent_us[slot].store(at_us, Ordering::Relaxed);
            self.acked_us[slot].store(NOT_YET, Ordering::Relaxed);
            self.ts[slot].store(m.ts, Ordering::Release);
        }
    }

    /// Notes that the updates of `op` were acknowledged at `at`.
    pub fn acked(&self, op: &Op, at: Instant) {
        let at_us = self.micros(at);
        for m in Self::moves(op) {
            if let Some(slot) = self.slot_of(m.traveller, m.ts) {
                self.acked_us[slot].store(at_us, Ordering::Release);
            }
        }
    }

    fn slot_of(&self, traveller: usize, ts: i64) -> Option<usize> {
        let (a, b) = (2 * traveller, 2 * traveller + 1);
        if b >= self.ts.len() {
            return None;
        }
        [a, b]
            .into_iter()
            .find(|&s| self.ts[s].load(Ordering::Acquire) == ts)
    }

    /// Whether `traveller`'s report of `ts` came before this run: older than every report
    /// the run sent it, with a slot still unused (so none was forgotten).
    fn before_run(&self, traveller: usize, ts: i64) -> bool {
        let (a, b) = (2 * traveller, 2 * traveller + 1);
        if b >= self.ts.len() {
            return false;
        }
        let (ta, tb) = (
            self.ts[a].load(Ordering::Acquire),
            self.ts[b].load(Ordering::Acquire),
        );
        // Slots are filled before a report is sent, so a report of the run is always in one
        // until two later ones replace it.
        let filled: Vec<i64> = [ta, tb].into_iter().filter(|&t| t != i64::MIN).collect();
        filled.len() < 2 && filled.iter().all(|&t| ts < t)
    }

    /// The cause of an event arriving now (`arrived`), judged with the reports
    /// `(traveller, ts)`: the latest of their sends and of their acknowledgements (an
    /// acknowledgement not yet noted counts as `arrived`). A report from before the run
    /// (a friend who has not moved, near a traveller who has) is not the cause. `None` if a
    /// report is no longer remembered (its traveller sent two more since), or if none was
    /// sent in the run.
    fn cause(&self, reports: &[(usize, i64)], arrived: u64) -> Option<Cause> {
        let mut cause: Option<Cause> = None;
        for &(traveller, ts) in reports {
            let Some(slot) = self.slot_of(traveller, ts) else {
                if self.before_run(traveller, ts) {
                    continue;
                }
                return None;
            };
            let acked = match self.acked_us[slot].load(Ordering::Acquire) {
                NOT_YET => arrived,
                at => at,
            };
            let sent = self.sent_us[slot].load(Ordering::Relaxed);
            let c = cause.get_or_insert(Cause { sent, acked });
            c.sent = c.sent.max(sent);
            c.acked = c.acked.max(acked);
        }
        cause
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Received {
    /// Per event: its cause, if known, and when it arrived (microseconds since the epoch).
    events: Vec<(Option<Cause>, u64)>,
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
    /// those whose cause was sent within `window`.
    pub async fn finish(
        self,
        window: std::ops::Range<Instant>,
    ) -> Result<EventsReport, BenchError> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop.cancel();
        let window = self.acks.micros(window.start)..=self.acks.micros(window.end);
        let histogram =
            || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        let (mut from_ack, mut from_send) = (histogram(), histogram());
        let (mut received, mut resets) = (0, 0);
        for task in self.tasks {
            let seen = task.await.map_err(std::io::Error::other)??;
            received += seen.events.len() as u64;
            resets += seen.resets;
            for (cause, arrived) in seen.events {
                if let Some(cause) = cause.filter(|c| window.contains(&c.sent)) {
                    // An event that came before its acknowledgement counts as 1 µs.
                    let since = |t: u64| arrived.saturating_sub(t).clamp(1, 60_000_000);
                    from_ack.record(since(cause.acked)).expect("clamped");
                    from_send.record(since(cause.sent)).expect("clamped");
                }
            }
        }
        let percentiles = |h: &Histogram<u64>| (!h.is_empty()).then(|| Percentiles::of(h));
        Ok(EventsReport {
            fences: 0,
            followed: 0,
            received,
            matched: from_ack.len(),
            resets,
            latency_us: percentiles(&from_ack),
            latency_from_send_us: percentiles(&from_send),
            memory: Vec::new(),
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
    use crate::workload::Move;

    fn m(traveller: usize, ts: i64) -> Move {
        Move {
            traveller,
            lat: 0.0,
            lon: 0.0,
            ts,
        }
    }

    #[test]
    fn a_cause_is_the_latest_send_and_acknowledgement_of_the_reports_an_event_was_judged_with() {
        let acks = Acks::new(4);
        let at = |ms| acks.epoch + Duration::from_millis(ms);
        let cause = |sent, acked| Some(Cause { sent, acked });
        let first = Op::Positions(vec![m(1, 100), m(2, 200)]);
        acks.sent(&first, at(1));
        assert_eq!(
            acks.cause(&[(1, 100)], 3_000),
            cause(1_000, 3_000),
            "not yet acknowledged"
        );
        acks.acked(&first, at(5));
        acks.sent(&Op::Position(m(2, 201)), at(6));
        acks.acked(&Op::Position(m(2, 201)), at(7));
        assert_eq!(acks.cause(&[(1, 100)], 9_000), cause(1_000, 5_000));
        assert_eq!(
            acks.cause(&[(1, 100), (2, 201)], 9_000),
            cause(6_000, 7_000)
        );
        assert_eq!(
            acks.cause(&[(2, 200)], 9_000),
            cause(1_000, 5_000),
            "two are kept"
        );
        acks.sent(&Op::Position(m(2, 202)), at(8));
        assert_eq!(acks.cause(&[(2, 200)], 9_000), None, "forgotten");
        assert_eq!(
            acks.cause(&[(3, 1)], 9_000),
            None,
            "from before the run, alone"
        );
        assert_eq!(
            acks.cause(&[(3, 1), (1, 100)], 9_000),
            cause(1_000, 5_000),
            "a friend who has not moved in the run, near one who has"
        );
        assert_eq!(
            acks.cause(&[(1, 99), (2, 201)], 9_000),
            cause(6_000, 7_000),
            "before 100"
        );
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
