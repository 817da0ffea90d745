//! The server's periodic tasks: sweeping expired travellers, expiring fence members and
//! old events, writing snapshots, and `--demo`'s travellers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::ServeConfig;
use crate::engine::{self, Engine};
use crate::server::AppState;

/// Starts the periodic tasks of a server serving `state` as `config` says.
pub(super) fn spawn(state: &AppState, config: &ServeConfig, demo: Option<std::net::SocketAddr>) {
    tokio::spawn(sweep_travellers(
        state.engine.clone(),
        super::state::ttl_ms(config),
    ));
    tokio::spawn(expire_fences(state.engine.clone(), state.ready.clone()));
    tokio::spawn(crate::server::upkeep_metrics(
        std::time::Duration::from_secs(5),
    ));
    if let Some(addr) = demo {
        tokio::spawn(run_demo(
            state.engine.clone(),
            state.ready.clone(),
            state.stopping.clone(),
            addr,
        ));
    }
    // A cluster's snapshots are uploaded by its follower (see `crate::cluster`).
    if config.snapshot_every > 0 && config.cluster.is_empty() {
        tokio::spawn(snapshot_periodically(
            state.engine.clone(),
            config.snapshot_every,
        ));
    }
}

/// Frees expired travellers' memory in the background: every tenth of the time-to-live
/// (between 1 s and 30 s), on a blocking thread, a shard at a time. Readers never wait for
/// it: they treat an expired position as gone whether or not it was swept.
async fn sweep_travellers(engine: Arc<Engine>, ttl_ms: i64) {
    let every_ms = (ttl_ms / 10).clamp(1_000, 30_000);
    let mut ticks =
        tokio::time::interval(std::time::Duration::from_millis(every_ms.unsigned_abs()));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let engine = engine.clone();
        match tokio::task::spawn_blocking(move || engine.sweep_travellers()).await {
            Ok(0) => {}
            Ok(dropped) => tracing::debug!(dropped, "swept expired travellers"),
            Err(e) => tracing::error!(error = %e, "traveller sweep failed"),
        }
    }
}

/// Every second, travellers whose position passed the time-to-live leave their fences
/// (an exit is due when the age passes, not when the sweeper frees the memory), events
/// past the retention window are dropped, and trips that start or end change who sees
/// their travellers. Waits for recovery, which judges afresh.
async fn expire_fences(engine: Arc<Engine>, ready: Arc<AtomicBool>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !ready.load(Ordering::Acquire) {
            continue;
        }
        let engine = engine.clone();
        let ticked = tokio::task::spawn_blocking(move || {
            engine.expire_fences();
            // Trips that start or end, and links that expire, by now.
            engine.tick_trips()
        })
        .await;
        match ticked {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(written))) => {
                // Made again from the trips a second later if it is lost.
                if let Err(e) = written.durable().await {
                    tracing::warn!(error = %e, "the trips' clock tick was not logged");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "the trips' clock tick was not logged"),
            Err(e) => tracing::error!(error = %e, "fence expiry failed"),
        }
    }
}

/// How many travellers `--demo` simulates.
const DEMO_TRAVELLERS: usize = 300;

/// Runs the demo's travellers once the data is in, until the server begins to stop.
async fn run_demo(
    engine: Arc<Engine>,
    ready: Arc<AtomicBool>,
    stopping: tokio_util::sync::CancellationToken,
    addr: std::net::SocketAddr,
) {
    while !ready.load(Ordering::Acquire) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::select! {
        () = crate::demo::run(engine, DEMO_TRAVELLERS, addr) => {}
        () = stopping.cancelled() => {}
    }
}

/// Writes a snapshot every `secs` seconds.
async fn snapshot_periodically(engine: Arc<Engine>, secs: u64) {
    let period = std::time::Duration::from_secs(secs);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let engine = engine.clone();
        match tokio::task::spawn_blocking(move || engine.snapshot()).await {
            Ok(Ok(_))
            | Ok(Err(engine::EngineError::NotPersistent | engine::EngineError::SnapshotBusy)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "periodic snapshot failed"),
            Err(e) => tracing::error!(error = %e, "periodic snapshot panicked"),
        }
    }
}
