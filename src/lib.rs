//! Proxima: an in-memory geospatial proximity server.
//!
//! This crate is the server around the engine ([`proxima_engine`]); its map, from the edge
//! inwards (a layer uses only those below it):
//!
//! - [`startup`]: `proxima serve`'s life, in named steps: bind, recover or join the
//!   cluster, serve, periodic tasks, shut down.
//! - [`server`]: HTTP (axum on hyper + tokio): routes, wire types, admission, limits,
//!   problem+json.
//! - [`cluster`]: cluster mode on NATS JetStream: the stream as the engine's change log
//!   ([`cluster::Replicator`]), following and applying it, snapshots in the object store,
//!   clock ticks, event export.
//! - [`offline`]: `proxima import` into a data directory without a server.
//! - [`demo`]: `--demo`'s simulated travellers.
//! - [`config`]: the command lines of `proxima serve` and `proxima import`.
//!
//! The engine's modules are re-exported under their own names ([`engine`], [`pois`],
//! [`travellers`], [`fences`], [`events`], [`import`], [`persist`], [`routes`], [`geometry`], [`ids`],
//! [`json`], [`clock`], [`sample`], [`background`]), so that `proxima::engine::Engine` names
//! the same type as `proxima_engine::engine::Engine`. The load harness is a crate of its own,
//! `proxima-bench`, mounted by the `proxima` binary's default `harness` feature.

pub mod cluster;
pub mod config;
pub mod demo;
pub mod offline;
pub mod server;
pub mod startup;

#[cfg(test)]
use proxima_engine::testing;
pub use proxima_engine::{
    background, capability, clock, devices, engine, events, fences, geometry, ids, import, json,
    persist, pois, routes, sample, travellers, trips, zones,
};

pub use startup::{RunError, Started, start, start_with_clock};
