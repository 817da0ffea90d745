//! Routes: the points a trip keeps, on disk.
//!
//! A route is every position its trip keeps, in `ts` order, each `ts` once, however late,
//! shuffled or repeated the batches that brought them. Routes grow without bound, so they
//! live in an embedded store on disk ([`RouteStore`]), not in memory, compressed in chunks
//! ([`codec`]). The store is made to be derived from the log: points are keyed by (trip,
//! `ts`), so applying the same change twice (replay, a cluster catching up) changes
//! nothing, and it records the last log sequence it made durable. Each trip's figures
//! ([`TripFigures`]) are kept beside its chunks, changed in the same transaction.

pub mod codec;
mod figures;
pub mod keys;
mod pieces;
pub mod places;
pub mod shape;
mod shown;
mod sphere;
pub mod stays;
mod store;

pub use figures::{FiguresFold, TripFigures};
pub use shown::ShownRoute;
pub use store::{
    Appended, DEFAULT_CACHE_BYTES, REWRITE_STEP, Rewrite, RouteStore, RouteStoreError, Settling,
    StoreSpace, TableSpace,
};

/// One point of a route.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoutePoint {
    /// When the traveller was there, Unix ms.
    pub ts: i64,
    /// Latitude, degrees (stored to 10⁻⁷).
    pub lat: f64,
    /// Longitude, degrees (stored to 10⁻⁷).
    pub lon: f64,
}

impl RoutePoint {
    /// Where it is.
    pub fn latlon(&self) -> crate::geometry::LatLon {
        crate::geometry::LatLon {
            lat: self.lat,
            lon: self.lon,
        }
    }

    /// Where it is, as a unit vector.
    pub fn unit(&self) -> [f64; 3] {
        self.latlon().to_unit()
    }
}
