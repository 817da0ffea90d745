//! Proxima: an in-memory geospatial proximity server.
//!
//! The crate's map, from the edge inwards (a layer uses only those below it):
//!
//! - [`startup`]: `proxima serve`'s life: bind, recover, serve, periodic tasks, shut down.
//! - [`server`]: HTTP (axum on hyper + tokio): routes, wire types, admission, limits,
//!   problem+json.
//! - [`offline`]: `proxima import` into a data directory without a server.
//! - [`bench`](mod@bench): the load harness, talking to a server over HTTP (or to Redis GEO).
//! - [`engine`]: the one state and its locking policy; every change is a
//!   [`engine::Mutation`], logged, applied and replayed through one path.
//! - [`pois`]: the POI collection: records, packed R-trees over unit vectors, queries,
//!   cursors.
//! - [`travellers`]: moving points in geohash cells on sharded slabs, trails, sharing, TTL.
//! - [`fences`]: static and roaming fences, who is inside each, judged as travellers change.
//! - [`events`]: fence events, retained for resuming and fanned out to bounded queues.
//! - [`import`]: readers turning CSV, NDJSON, GeoJSON and OSM PBF dumps into POIs and
//!   per-record errors.
//! - [`persist`]: the write-ahead log and snapshot files, generic over what they store.
//! - [`geometry`], [`ids`] and [`json`]: pure functions over coordinates, cells,
//!   identifiers and JSON; [`clock`]: time, injected; [`config`]: the command line;
//!   [`sample`]: the bundled sample data; [`background`]: background threads' priority.

pub mod background;
pub mod bench;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod engine;
pub mod events;
pub mod fences;
pub mod geometry;
pub mod ids;
pub mod import;
pub mod json;
pub mod offline;
pub mod persist;
pub mod pois;
pub mod sample;
pub mod server;
pub mod startup;
#[cfg(test)]
mod testing;
pub mod travellers;

pub use startup::{RunError, Started, start, start_with_clock};
