//! Proxima's engine: everything below the HTTP edge, with no knowledge of HTTP or NATS.
//!
//! The crate's map, from the top down (a module uses only those below it):
//!
//! - [`sample`]: the bundled sample data, loaded into an engine.
//! - [`engine`]: the one state and its locking policy; every change is a
//!   [`engine::Mutation`], checked, logged through the [`engine::ChangeLog`] seam (the local
//!   write-ahead log, or a cluster's stream) and applied through one path, live and on
//!   replay. Fences and live maps are judged off the write path.
//! - [`pois`]: the POI collection: records, packed R-trees over unit vectors, queries,
//!   cursors.
//! - [`travellers`]: moving points in geohash cells on sharded slabs, trails, sharing, TTL.
//! - [`fences`]: static and roaming fences and live maps, who is inside each, judged as
//!   travellers change.
//! - [`events`]: fence events, retained for resuming and fanned out to bounded queues.
//! - [`import`]: readers turning CSV, NDJSON, GeoJSON and OSM PBF dumps into POIs and
//!   per-record errors.
//! - [`trips`]: travellers' trips, their followers and share links.
//! - [`devices`]: the tracking apps that report a traveller's positions, with their tokens.
//! - [`routes`]: the points trips keep, on disk (`redb`), in delta-encoded chunks, with
//!   each trip's figures.
//! - [`persist`]: the write-ahead log and snapshot files, generic over what they store.
//! - [`geometry`], [`ids`] and [`json`]: pure functions over coordinates, cells, areas,
//!   identifiers and JSON; [`capability`]: tokens kept as hashes; [`clock`]: time, injected; [`background`]: background
//!   threads' priority.

pub mod background;
pub mod capability;
pub mod clock;
pub mod devices;
pub mod engine;
pub mod events;
pub mod fences;
pub mod geometry;
pub mod ids;
pub mod import;
pub mod json;
pub mod persist;
pub mod pois;
pub mod routes;
pub mod sample;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod travellers;
pub mod trips;
pub mod zones;
