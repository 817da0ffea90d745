//! Fences: areas and moving circles that tell their subscribers who comes and goes.
//!
//! A **static fence** is an area; a **roaming fence** is a circle of `radius_m` around a
//! traveller (`around`). Either sees only the travellers its `viewer` may see (a roaming
//! fence also needs the viewer to see `around`); a `None` viewer sees everyone. A fence
//! belongs to its **owner**, the caller that made it: fences are named by owner and id
//! ([`FenceKey`]), so two callers each have their own `home` and no answer tells one about
//! the other's. A fence is a definition ([`Fence`], logged and snapshotted as a mutation)
//! and a state: who is inside now, kept by [`Fences`] and changed only by judging, which
//! publishes an event for every change to the [`EventLog`](crate::events::EventLog):
//! - a traveller that changed (moved, changed its sharing, was deleted) is judged against
//!   the fences it is inside and those near it that can see it: for a public traveller the
//!   fences whose cells hold it, for anyone else only the fences of the viewers it shares
//!   with and those that see everyone, so its cost never depends on fences set up by
//!   callers who cannot see it;
//! - a traveller that roaming fences follow moves them: their cells follow it, and they
//!   are judged again over the travellers near it. A roaming fence whose viewer may no
//!   longer see its traveller stops following it at once (it costs that traveller's moves
//!   nothing) until a sharing change lets the viewer see it again;
//! - sharing changes, deletes, expiry (a scan every second) and fence edits judge the
//!   travellers they concern, with their cause.
//!
//! Locks, always taken in this order: a traveller's record (by the traveller index), a
//! fence's state, then the event log; the cell maps and the membership map are leaves,
//! never held while another lock is taken.

mod cells;
#[cfg(test)]
mod cells_tests;
mod judge;
mod members;
mod registry;
mod usage;
mod watch;

pub use cells::Covering;

/// A map keyed by traveller id, hashed with foldhash: a fence's members are looked up on
/// every move of every traveller near it (with std's SipHash that lookup was 5 % of a
/// roaming benchmark's server time).
pub(crate) type ByTraveller<V> =
    std::collections::HashMap<crate::travellers::TravellerId, V, foldhash::fast::RandomState>;
pub use registry::{FenceCounts, Fences, FencesConfig, InsidePage, Subject};
pub use usage::{FenceLimitError, FenceQuotas};
pub use watch::{WatchError, WatchHandle, WatchNext, Watches};

use crate::geometry::area::Area;
pub use crate::ids::FenceKey;
use crate::ids::{validate_id, validate_owner};
use crate::travellers::Seen;

/// The largest radius a roaming fence may ever have, metres: a circle around a moving
/// traveller is re-covered on every move, so it stays local. The server's own limit
/// (`--max-roaming-radius-m`, 5 km by default) may be lower.
pub const MAX_ROAMING_RADIUS_M: f64 = 50_000.0;

/// The owner of everything made on an open server (no keys), and of fences stored before
/// fences had owners.
pub const OPEN_OWNER: &str = "open";

/// A fence, as defined. Deserializing validates it as [`Fence::new`] does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "FenceFields")]
pub struct Fence {
    /// Id, unique per owner.
    pub id: String,
    /// Who made it: `open`, `key:<hex>` or `traveller:<id>`.
    pub owner: String,
    /// Whose view the fence has (`None`: every traveller).
    pub viewer: Option<String>,
    /// What it covers.
    pub kind: FenceKind,
}

/// What a fence covers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FenceKind {
    /// An area.
    Static(Area),
    /// The points within `radius_m` of a traveller.
    Roaming {
        /// The traveller it is around.
        around: String,
        /// Metres.
        radius_m: f64,
    },
}

/// [`Fence`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct FenceFields {
    id: String,
    owner: String,
    viewer: Option<String>,
    kind: FenceKind,
}

impl TryFrom<FenceFields> for Fence {
    type Error = FenceError;

    fn try_from(f: FenceFields) -> Result<Self, FenceError> {
        Self::new(f.id, f.owner, f.viewer, f.kind)
    }
}

/// A fence as logs and snapshots of format version 1 hold it, before fences had owners:
/// it is read as [`OPEN_OWNER`]'s.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LegacyFence {
    /// Id.
    pub id: String,
    /// Whose view the fence has.
    pub viewer: Option<String>,
    /// What it covers.
    pub kind: FenceKind,
}

impl TryFrom<LegacyFence> for Fence {
    type Error = FenceError;

    fn try_from(f: LegacyFence) -> Result<Self, FenceError> {
        Self::new(f.id, OPEN_OWNER.into(), f.viewer, f.kind)
    }
}

/// Why a fence was refused: the member at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct FenceError {
    /// The member at fault (`viewer`, `roaming.radius_m`, ...).
    pub at: String,
    /// What is wrong.
    pub reason: String,
}

impl Fence {
    /// A validated fence.
    pub fn new(
        id: String,
        owner: String,
        viewer: Option<String>,
        kind: FenceKind,
    ) -> Result<Self, FenceError> {
        let bad = |at: &str, reason: String| FenceError {
            at: at.into(),
            reason,
        };
        validate_id(&id).map_err(|e| bad("id", e.to_string()))?;
        validate_owner(&owner).map_err(|e| bad("owner", e.to_string()))?;
        if let Some(v) = &viewer {
            validate_id(v).map_err(|e| bad("viewer", e.to_string()))?;
        }
        if let FenceKind::Roaming { around, radius_m } = &kind {
            validate_id(around).map_err(|e| bad("roaming.around", e.to_string()))?;
            if !(radius_m.is_finite() && *radius_m > 0.0 && *radius_m <= MAX_ROAMING_RADIUS_M) {
                return Err(bad(
                    "roaming.radius_m",
                    format!(
                        "must be a number greater than 0 and at most {MAX_ROAMING_RADIUS_M}, got {radius_m}"
                    ),
                ));
            }
        }
        Ok(Self {
            id,
            owner,
            viewer,
            kind,
        })
    }

    /// Its name.
    pub fn key(&self) -> FenceKey {
        FenceKey::new(&self.owner, &self.id)
    }

    /// Whether the fence's viewer may see `seen` (a fence with no viewer sees everyone
    /// outside their privacy zones).
    pub fn sees(&self, seen: Seen<'_>) -> bool {
        match &self.viewer {
            Some(viewer) => seen.allows(Some(viewer)),
            None => !seen.in_privacy_zone(),
        }
    }

    /// Whether it is a roaming fence.
    pub fn is_roaming(&self) -> bool {
        matches!(self.kind, FenceKind::Roaming { .. })
    }

    /// The traveller a roaming fence is around.
    pub fn around(&self) -> Option<&str> {
        match &self.kind {
            FenceKind::Roaming { around, .. } => Some(around),
            FenceKind::Static(_) => None,
        }
    }

    /// Positions it holds: its area's vertices (a circle or a roaming fence counts one).
    pub fn vertices(&self) -> usize {
        match &self.kind {
            FenceKind::Static(area) => area.vertices().max(1),
            FenceKind::Roaming { .. } => 1,
        }
    }
}
