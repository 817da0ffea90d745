//! Wire types: the JSON bodies the API reads and writes, kept apart from the core types so
//! that the core can change shape without changing the contract. One file per part of the
//! API, as the routes are.
//!
//! Answers that were first written with `serde_json::json!`, whose objects sort their keys,
//! keep that order: their fields are declared in alphabetical order, so the bytes on the
//! wire are unchanged.

mod areas;
mod devices;
mod fences;
mod fields;
mod operations;
mod pois;
mod routes;
mod travellers;
mod trips;
mod zones;

pub use areas::{AreaIn, AreaOut};
pub use devices::{DeviceCreatedOut, DeviceIn, DeviceOut, DevicesOut, OverlandOut};
pub use fences::{EventDataOut, FenceIn, FenceOut, FencePageOut, InsideOut, event_name};
pub use operations::{
    ClusterOut, EventsOut, HeatmapOut, LastSnapshotOut, MemoryOut, SnapshotOut, StatsOut, WalOut,
};
pub use pois::{
    CategoriesOut, ImportOut, PageOut, PoiAreaQueryIn, PoiIn, PoiOut, RecordErrorOut,
    ResponseFields,
};
pub use routes::{RouteFormatError, route_geojson, route_gpx, route_polylines};
pub use travellers::{
    BatchOut, NearbyTravellersOut, PositionIn, SharingIn, SharingOut, TrailOut,
    TravellerAreaQueryIn, TravellerAtOut, TravellerAtPageOut, TravellerOut,
};
pub use trips::{
    FollowersOut, LinkCreatedOut, LinkIn, LinksOut, StaysOut, TrackImportOut, TrackRejected,
    TripFiguresOut, TripIn, TripOut, TripPageOut, point_event_data,
};
pub use zones::{PrivacyZoneIn, PrivacyZoneOut, PrivacyZonesOut};
