//! Route handlers, one file per part of the API: each parses its request into typed values
//! ([`super::params`], [`super::dto`]), makes one engine call, and writes the answer
//! ([`super::response`]). No index logic lives here.

pub mod devices;
pub mod fences;
pub mod ingest;
pub mod operations;
pub mod pois;
pub mod shared;
pub mod streams;
pub mod track_imports;
pub mod travellers;
pub mod trip_views;
pub mod trips;
pub mod zones;
