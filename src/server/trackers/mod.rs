//! Trackers' protocols: the published protocols of the tracking apps people already run,
//! each read by its own module into [`Fix`]es, which the routes
//! ([`crate::server::routes::ingest`]) hand to the one write path as the traveller's
//! position reports.
//!
//! - [`owntracks`]: the OwnTracks app's HTTP mode, one JSON message a request
//!   (<https://owntracks.org/booklet/tech/http/>, <https://owntracks.org/booklet/tech/json/>).
//! - [`overland`]: the Overland app's batches of GeoJSON points
//!   (<https://github.com/aaronpk/Overland-iOS#api>).
//! - [`osmand`]: the OsmAnd protocol of OsmAnd and Traccar Client, as query or form
//!   parameters, and Traccar Client's JSON body (<https://www.traccar.org/osmand/>).
//!
//! Each protocol reads only what a position needs (where, when, how accurate) and leaves
//! the rest of what the apps send (battery, speed, motion) unread: Proxima keeps no more
//! than it uses. [`time`] reads the instants as the apps write them.

pub mod osmand;
pub mod overland;
pub mod owntracks;
pub mod time;
pub mod tracks;

/// One position as a tracker reported it, before it is checked as a position report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// When, Unix ms.
    pub ts: i64,
    /// The accuracy radius the device reported, metres (none when it reported none, or a
    /// negative one, which iOS uses for "invalid").
    pub accuracy_m: Option<f64>,
}

/// An accuracy as reported: kept only when it is a radius (finite, zero or more).
pub fn accuracy(reported: Option<f64>) -> Option<f64> {
    reported.filter(|a| a.is_finite() && *a >= 0.0)
}
