//! Integration tests: one binary (it links once), a module per behaviour. Each test starts
//! the real server on an ephemeral port of 127.0.0.1 and talks to it over HTTP.

mod areas;
mod bench;
mod browser;
mod cli;
mod cluster;
mod common;
mod concurrency;
mod contract;
mod durability;
mod edge_answers;
mod fence_restart;
mod fences;
mod hostile;
mod hostile_data;
mod idempotency;
mod import_csv;
mod import_formats;
mod operations;
mod poi_errors;
mod poi_queries;
mod poi_routes;
mod process;
mod replay;
mod route_formats;
mod stalled;
mod tokens;
mod track_imports;
mod trackers;
mod travellers;
mod trips;
mod viewer;
mod watch;
mod zones;
