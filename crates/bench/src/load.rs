//! Loading the benchmark's data into the target before the workloads run: POIs by NDJSON
//! import, travellers by position batches (every tenth made public), or both as `GEOADD`s
//! for Redis.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;

use super::fences::send_all;
use super::http::{Call, Conn};
use super::workload::{self, Scenario};
use super::{BenchError, data, redis};
use crate::args::BenchConfig;

/// POIs per import request and updates per batch while loading: each request is one log
/// record, and a cluster's must fit a NATS message (1 MiB by default; 10,000 POIs are
/// about 700 KB).
const LOAD_CHUNK: usize = 10_000;
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

pub(super) async fn expect_ok(conn: &mut Conn, call: Call) -> Result<(), BenchError> {
    let (status, body) = conn.send(call).await?;
    if status >= 300 {
        return Err(BenchError::Load {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(())
}

pub(super) async fn load_pois(
    addr: SocketAddr,
    key: Option<&str>,
    n: usize,
    mut places: data::Places,
) -> Result<(), BenchError> {
    let mut conn = Conn::open(addr, key).await?;
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

pub(super) async fn load_travellers(
    addr: SocketAddr,
    key: Option<&str>,
    scenario: &Arc<Scenario>,
    n: usize,
    trail: u64,
) -> Result<(), BenchError> {
    // Round `r` moves every traveller once, a little north of the round before; its `ts`
    // is later than the round before's (`Scenario::ts_for`). Each round goes over a few
    // connections at once so the server is never idle while the next body is built.
    for round in 0..trail {
        let scenario = scenario.clone();
        send_all(addr, key, "travellers", n.div_ceil(LOAD_CHUNK), move |c| {
            let start = c * LOAD_CHUNK;
            let op = positions_in_round(&scenario, start..(start + LOAD_CHUNK).min(n), round);
            Some(scenario.http(&op))
        })
        .await?;
    }
    // Every tenth traveller shares publicly.
    send_all(addr, key, "public", n, |i| {
        i.is_multiple_of(PUBLIC_EVERY).then(|| Call {
            method: Method::PUT,
            path: format!("/v1/travellers/bench:t:{i}/sharing"),
            body: Some((
                "application/json",
                Bytes::from_static(b"{\"visibility\":\"public\"}"),
            )),
        })
    })
    .await?;
    Ok(())
}

/// The same POIs and travellers as the Proxima load, as `GEOADD`s of 1,000 members.
pub(super) async fn load_redis(
    url: &str,
    config: &BenchConfig,
    scenario: &Scenario,
    mut places: data::Places,
) -> Result<(), BenchError> {
    let mut conn = redis::RedisConn::open(url).await?;
    let failed = |what: &str| BenchError::Load {
        status: 0,
        body: format!("Redis refused a GEOADD of {what}"),
    };
    for start in (0..config.load_pois).step_by(1000) {
        let end = (start + 1000).min(config.load_pois);
        let members: Vec<(String, proxima_engine::geometry::LatLon)> = (start..end)
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
pub(super) fn starting_positions(
    scenario: &Scenario,
    range: std::ops::Range<usize>,
) -> workload::Op {
    positions_in_round(scenario, range, 0)
}

/// Travellers `range` `round` steps of ~1 m north of their starting places (the step
/// shrinks to nothing at the pole), as one batch of updates.
fn positions_in_round(
    scenario: &Scenario,
    range: std::ops::Range<usize>,
    round: u64,
) -> workload::Op {
    let moves = range
        .map(|i| {
            let p = scenario.travellers[i];
            workload::Move {
                traveller: i,
                lat: (p.lat + round as f64 * 1e-5).min(90.0),
                lon: p.lon,
                ts: scenario.ts_for(i),
            }
        })
        .collect();
    workload::Op::Positions(moves)
}
