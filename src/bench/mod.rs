//! Benchmark support: realistic, deterministic data for the criterion benches (and, later,
//! the HTTP load harness).

pub mod data;
