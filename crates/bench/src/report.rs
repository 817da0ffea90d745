//! Benchmark results: latency percentiles from an HdrHistogram, one report per workload,
//! printed as a table or as JSON lines.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One workload's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// What was measured: `proxima` or `redis`.
    pub target: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Measured seconds (after warm-up).
    pub duration_s: f64,
    /// Requests completed while measuring.
    pub ops: u64,
    /// `ops / duration_s`.
    pub throughput_per_s: f64,
    /// Latency of every request.
    pub latency_us: Percentiles,
    /// Failed requests (non-2xx answers and transport errors).
    pub errors: u64,
    /// Of `errors`, those the target refused for now with a `Retry-After` (429, or 503 as
    /// when the route store is behind): the connection waited as told before going on.
    pub refused: u64,
    /// For the mixed workload: the queries' latency alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_latency_us: Option<Percentiles>,
    /// Updates per second, for workloads that send updates in batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updates_per_s: Option<f64>,
    /// For the fence workloads: `updates_per_s` over that of the `positions` workload
    /// earlier in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_positions: Option<f64>,
    /// For `trips`: `updates_per_s` over that of `late-positions` earlier in the same run
    /// (the same batches with no trip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_late_positions: Option<f64>,
    /// For the fence workloads: the fences, and the events their subscribers received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsReport>,
    /// For the trip workloads: the trips, their memory, and what their followers were told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trips: Option<TripsReport>,
}

/// The trips of the trip workloads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TripsReport {
    /// Trips put, one a traveller.
    pub trips: usize,
    /// The server's resident memory after putting them over before, per trip.
    pub memory_per_trip_bytes: Option<f64>,
    /// Follower streams open.
    pub follower_streams: usize,
    /// Points those streams were told, from the stage's start.
    pub points_streamed: u64,
}

/// What the subscribers of a fence workload received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventsReport {
    /// Fences put.
    pub fences: usize,
    /// Fences followed by the subscribers.
    pub followed: usize,
    /// Events received.
    pub received: u64,
    /// Events matched to an update acknowledged while measuring: those in `latency_us`.
    pub matched: u64,
    /// Resets received (a subscriber fell behind and followed again from then).
    pub resets: u64,
    /// From an update's acknowledgement to its event's arrival, microseconds (1 when the
    /// event came first).
    pub latency_us: Option<Percentiles>,
    /// From the update's send to its event's arrival, microseconds: an upper bound.
    pub latency_from_send_us: Option<Percentiles>,
    /// The server's resident memory grown by putting each kind of fence, over their number
    /// (everything a fence brings: its shape, its cells, who is inside, the events of its
    /// creation).
    pub memory: Vec<FenceMemory>,
}

/// Memory taken by one kind of fence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FenceMemory {
    /// Which kind.
    pub kind: String,
    /// How many were put.
    pub fences: usize,
    /// Resident memory grown, over `fences`.
    pub bytes_per_fence: f64,
}

/// A readable table of reports.
pub fn table(reports: &[Report]) -> String {
    let mut out = format!(
        "{:<18} {:>7} {:>5} {:>12} {:>14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}\n",
        "workload",
        "target",
        "conns",
        "ops",
        "ops/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "errors"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<18} {:>7} {:>5} {:>12} {:>14.0} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}\n",
            r.workload,
            r.target,
            r.connections,
            r.ops,
            r.throughput_per_s,
            r.latency_us.p50,
            r.latency_us.p90,
            r.latency_us.p99,
            r.latency_us.p999,
            r.latency_us.max,
            r.errors
        ));
        if r.refused > 0 {
            out.push_str(&format!(
                "{:<18} {:>7} of the errors, {} refused for now (waited out as told by Retry-After)\n",
                "", "", r.refused
            ));
        }
        if let Some(q) = &r.query_latency_us {
            out.push_str(&format!(
                "{:<18} {:>7} queries only: p50 {} µs, p99 {} µs\n",
                "", "", q.p50, q.p99
            ));
        }
        if let Some(u) = r.updates_per_s {
            let ratio = [
                (r.vs_positions, "positions"),
                (r.vs_late_positions, "late-positions"),
            ]
            .into_iter()
            .filter_map(|(v, of)| Some(format!(", {:.2} x {of}", v?)))
            .collect::<String>();
            out.push_str(&format!("{:<18} {:>7} {u:.0} updates/s{ratio}\n", "", ""));
        }
        if let Some(e) = &r.events {
            let latency = e
                .latency_us
                .map(|l| {
                    format!(
                        ", latency p50 {} µs, p99 {} µs, max {} µs",
                        l.p50, l.p99, l.max
                    )
                })
                .unwrap_or_default();
            let from_send = e
                .latency_from_send_us
                .map(|l| format!(" (from the send: p50 {} µs, p99 {} µs)", l.p50, l.p99))
                .unwrap_or_default();
            let memory: String = e
                .memory
                .iter()
                .map(|m| format!(", {:.0} bytes per {} fence", m.bytes_per_fence, m.kind))
                .collect();
            out.push_str(&format!(
                "{:<18} {:>7} {} fences ({} followed){memory}: {} events ({} timed), {} resets{latency}{from_send}\n",
                "", "", e.fences, e.followed, e.received, e.matched, e.resets
            ));
        }
        if let Some(t) = &r.trips {
            let memory = t
                .memory_per_trip_bytes
                .map(|b| format!(", {b:.0} bytes of memory per trip"))
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<18} {:>7} {} trips{memory}; {} follower streams told {} points\n",
                "", "", t.trips, t.follower_streams, t.points_streamed
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for v in 1..=1000u64 {
            h.record(v).expect("in range");
        }
        let p = Percentiles::of(&h);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (500, 900, 990, 1000));
        assert!(p.p999 >= 999);
    }

    #[test]
    fn a_report_serializes_to_the_documented_json_shape() {
        let p = Percentiles {
            p50: 1,
            p90: 2,
            p99: 3,
            p999: 4,
            max: 5,
        };
        let r = Report {
            workload: "healthz".into(),
            target: "proxima".into(),
            connections: 2,
            duration_s: 1.0,
            ops: 10,
            throughput_per_s: 10.0,
            latency_us: p,
            errors: 0,
            refused: 0,
            query_latency_us: None,
            updates_per_s: None,
            vs_positions: None,
            vs_late_positions: None,
            events: None,
            trips: None,
        };
        let json = serde_json::to_value(&r).expect("serializes");
        for field in [
            "workload",
            "connections",
            "duration_s",
            "ops",
            "throughput_per_s",
            "latency_us",
            "errors",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        for field in ["p50", "p90", "p99", "p999", "max"] {
            assert!(json["latency_us"].get(field).is_some(), "{field}");
        }
        assert!(json.get("query_latency_us").is_none());
        assert!(table(&[r]).contains("healthz"));
    }
}
