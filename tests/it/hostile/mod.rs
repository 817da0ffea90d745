//! The hostile world: each attack found by probing the server as a caller with one ordinary
//! token (and a data dir and cluster on a bad night) would, replayed as a test that failed
//! before its fix. One module per kind of attack.

mod availability;
mod data_dir;
mod edge;
mod privacy;
