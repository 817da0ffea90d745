//! [`Mutation`]: every change to Proxima's state, as a value.
//!
//! The engine applies only mutations, so the same values can later be written to a log,
//! replayed on recovery, or shipped to a replica, through one `apply` path.

use crate::pois::Poi;
use crate::travellers::{PositionUpdate, Sharing};

/// How an import treats the POIs already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ImportMode {
    /// Add the imported POIs, replacing those with the same id.
    #[default]
    Upsert,
    /// The imported POIs become the whole set, at once.
    Replace,
}

impl std::str::FromStr for ImportMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "upsert" => Ok(Self::Upsert),
            "replace" => Ok(Self::Replace),
            other => Err(format!("expected upsert or replace, got {other:?}")),
        }
    }
}

/// One change to the state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Mutation {
    /// Create or replace one POI.
    UpsertPoi(Poi),
    /// Delete one POI by id.
    DeletePoi(String),
    /// Apply a whole import at once.
    ImportPois {
        /// Upsert into, or replace, the current set.
        mode: ImportMode,
        /// The POIs, in input order (a later one with the same id wins).
        pois: Vec<Poi>,
    },
    /// A batch of validated position reports, received together.
    Positions {
        /// When the server received them (Unix ms): ages are clamped to it.
        received_ms: i64,
        /// The reports, in arrival order.
        updates: Vec<PositionUpdate>,
    },
    /// Set who may see a traveller.
    SetSharing {
        /// Traveller id.
        id: String,
        /// The new setting.
        sharing: Sharing,
    },
    /// Forget a traveller.
    DeleteTraveller {
        /// Traveller id.
        id: String,
        /// When it was asked (Unix ms), to tell whether a position was still live.
        at_ms: i64,
    },
}

/// What applying a mutation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A POI was stored; `created` is false if it replaced one.
    PoiStored {
        /// Whether the id was new.
        created: bool,
    },
    /// A delete ran; `existed` is false if there was nothing to delete.
    PoiDeleted {
        /// Whether the POI existed.
        existed: bool,
    },
    /// An import was applied.
    Imported {
        /// Number of POIs written.
        count: usize,
    },
    /// Position reports were applied.
    Positions {
        /// Reports that became their traveller's newest position.
        applied: usize,
        /// Reports that were not newer (kept in the trail where there was room).
        stale: usize,
    },
    /// A sharing setting was stored.
    SharingSet,
    /// A traveller was forgotten; `existed` is false if there was nothing visible to forget.
    TravellerDeleted {
        /// Whether it had a live position or a sharing setting.
        existed: bool,
    },
}
