//! Trips: a traveller's trips, who follows each, and the links that share them.
//!
//! [`Trips`] owns every trip's record ([`TripRecord`]: the [`Trip`], its followers and its
//! [`Link`]s), found by id, by traveller (each traveller's trips in time order, never
//! overlapping, so a position's `ts` falls in at most one), and by link. It also keeps the
//! instants at which something about a trip changes by itself (it starts, it ends, a link
//! expires), for the engine's clock tick.
//!
//! Who may see a trip, and a running trip's traveller, is decided by
//! [`crate::travellers::sharing`], the one place visibility is decided; this module only
//! hands it the followers ([`Trips::share_at`]). Routes themselves are in
//! [`crate::routes`], on disk.

mod followed;
mod links;
mod registry;
#[cfg(test)]
mod registry_tests;
mod table;
#[cfg(test)]
mod table_tests;
mod trip;

pub use links::{Link, split_token};
pub use registry::{TripPut, Trips};
pub use trip::{MAX_TITLE_BYTES, Trip, TripFieldError};

use crate::ids::IdError;

/// The most followers a trip may have.
pub const MAX_FOLLOWERS: usize = 1_000;
/// The most links a trip may have at once.
pub const MAX_LINKS: usize = 100;
/// The most trips a traveller may have.
pub const MAX_TRIPS_PER_TRAVELLER: usize = 10_000;

/// One trip and who may read it: as kept, snapshotted and listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TripRecord {
    /// The trip.
    pub trip: Trip,
    /// Its followers, sorted, each once.
    pub followers: Vec<String>,
    /// Its share links.
    pub links: Vec<Link>,
}

impl TripRecord {
    /// Whether `viewer` may see the trip, its route and stays (see
    /// [`crate::travellers::sharing::follows`]).
    pub fn visible_to(&self, viewer: Option<&str>) -> bool {
        crate::travellers::sharing::follows(
            self.trip.traveller(),
            self.followers.as_slice(),
            viewer,
        )
    }
}

/// Why a change to trips was refused. A refused change changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TripError {
    /// No such trip (or one the caller may not see: the same answer).
    #[error("no trip {0:?}")]
    NotFound(String),
    /// The trip's window shares an instant with another trip of its traveller.
    #[error(
        "started_at, ended_at: the trip overlaps the traveller's trip {other:?}; a traveller's trips never overlap in time"
    )]
    Overlap {
        /// The other trip's id.
        other: String,
    },
    /// The id is another traveller's trip. The words say no more than that the id is
    /// taken: not whose, nor anything of it (a caller may not see that traveller). Trip ids
    /// are one space for every traveller, so that much is told; an unguessable id (a UUID)
    /// tells nothing.
    #[error(
        "id: trip id {id:?} is taken, and a trip's traveller never changes; choose another id (a random one, such as a UUID, is never taken)"
    )]
    OtherTraveller {
        /// The trip's id.
        id: String,
    },
    /// A limit would be passed.
    #[error("{what}: at most {limit} are allowed")]
    Limit {
        /// What is counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A follower's id is malformed.
    #[error("viewer: {0}")]
    Follower(IdError),
}
