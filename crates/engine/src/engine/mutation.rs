//! [`Mutation`]: every change to Proxima's state, as a value, one struct per kind.
//!
//! Every change is one of these kinds, logged as its variant of [`Mutation`] and applied
//! through the kind's one `apply`, live and on recovery, so the same values can be written
//! to a log, replayed, or shipped to a replica. Each kind is a [`Change`]: it says which
//! lock orders it, what it checks before it is logged, and what applying it reports, so
//! the engine's write path is one generic function and every caller gets its own outcome
//! type back. The kinds are listed once, in `mutations!`.
//!
//! On disk a mutation is the bincode of the enum: the variant's index (its place in
//! `mutations!`), then the kind's fields in order. Changing a kind's place or its fields
//! changes the log format.

use serde::ser::{Serialize, Serializer};

use super::{Engine, EngineError, PositionCounts, Removed, Stored};
use crate::devices::Device;
use crate::fences::{Fence, LegacyFence};
use crate::ids::{validate_id, validate_owner, validate_record_id};
use crate::pois::Poi;
use crate::travellers::{PositionUpdate, Sharing};
use crate::trips::{Link, Trip};
use crate::zones::PrivacyZone;

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

/// Declares the kinds of change, once, in the order that is the log format: [`Mutation`]
/// with a variant per kind, each kind's conversion into it, its [`Variant`] (index and
/// name, for [`Logged`]), and [`Mutation::redo`].
macro_rules! mutations {
    ($($(#[$doc:meta])* $kind:ident => $outcome:ty,)*) => {
        /// One change to the state.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum Mutation {
            $($(#[$doc])* $kind($kind),)*
        }

        /// What applying a [`Mutation`] reported: its kind's own outcome, handed from the
        /// apply on a cluster node to the writer waiting for it.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Outcome {
            $($(#[$doc])* $kind($outcome),)*
        }

        /// The kinds in the enum's order: each discriminant is its variant's index.
        #[derive(Clone, Copy)]
        enum Kind {
            $($kind,)*
        }

        $(
            impl From<$kind> for Mutation {
                fn from(change: $kind) -> Self {
                    Self::$kind(change)
                }
            }

            impl Variant for $kind {
                const VARIANT: (u32, &'static str) = (Kind::$kind as u32, stringify!($kind));
            }

            impl Reported for $kind {
                fn report(outcome: <Self as Change>::Outcome) -> Outcome {
                    Outcome::$kind(outcome)
                }

                fn reported(outcome: Outcome) -> Option<<Self as Change>::Outcome> {
                    match outcome {
                        Outcome::$kind(outcome) => Some(outcome),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*

        impl Mutation {
            /// Applies the mutation to memory, as recovery does, discarding its outcome.
            pub(super) fn redo(self, engine: &Engine) -> Result<(), EngineError> {
                match self {
                    $(Self::$kind(change) => change.apply(engine, engine.now_ms()).map(drop),)*
                }
            }

            /// The lock that orders this kind of change.
            pub(super) fn order(&self) -> Order {
                match self {
                    $(Self::$kind(_) => <$kind as Change>::ORDER,)*
                }
            }

            /// Applies the mutation to memory, as a cluster node does with what it reads
            /// from the stream (`now_ms`: when the stream stored it), and gives its
            /// outcome for the writer waiting on it.
            pub(super) fn redo_reporting(
                self,
                engine: &Engine,
                now_ms: i64,
            ) -> Result<Outcome, EngineError> {
                match self {
                    $(Self::$kind(change) => change.apply(engine, now_ms).map(<$kind>::report),)*
                }
            }
        }
    };
}

mutations! {
    /// Create or replace one POI.
    UpsertPoi => Stored,
    /// Delete one POI by id.
    DeletePoi => Removed,
    /// Apply a whole import at once.
    ImportPois => (),
    /// A batch of validated position reports, received together.
    Positions => PositionCounts,
    /// Set who may see a traveller.
    SetSharing => (),
    /// Forget a traveller.
    DeleteTraveller => Removed,
    /// Create or replace a fence, as format version 1 logged it (before fences had owners):
    /// replayed as the open owner's.
    PutLegacyFence => Stored,
    /// Delete a fence, as format version 1 logged it: the open owner's.
    DeleteLegacyFence => Removed,
    /// Travellers whose position passed the time-to-live leave their fences (a cluster's
    /// clock tick).
    ExpireFences => (),
    /// Create or replace an owner's fence.
    PutFence => Stored,
    /// Delete an owner's fence.
    DeleteFence => Removed,
    /// Create or replace a trip.
    PutTrip => Stored,
    /// Delete a trip with its route, followers and links.
    DeleteTrip => Removed,
    /// Add a follower to a trip.
    PutFollower => (),
    /// Remove a follower from a trip.
    DeleteFollower => Removed,
    /// Add a share link to a trip.
    CreateLink => (),
    /// Revoke a trip's share link.
    RevokeLink => Removed,
    /// Trips that start or end by `at_ms` change who sees their travellers, and links
    /// expired by then are dropped (the clock tick of trips).
    TickTrips => (),
    /// Add a device that reports a traveller's positions (its token's hash, never the
    /// token).
    CreateDevice => (),
    /// Revoke a traveller's device.
    RevokeDevice => Removed,
    /// Create or replace a traveller's privacy zone (with its shroud's secret).
    PutPrivacyZone => Stored,
    /// Delete a traveller's privacy zone.
    DeletePrivacyZone => Removed,
    /// A chunk of a recorded track's points into a trip's route.
    ImportTrackPoints => (),
}

impl Mutation {
    /// Holds the ids a change carries as plain strings to the edge's rules, for a change
    /// read back from the log (the values with types of their own check themselves when
    /// deserialized).
    pub(super) fn check_ids(&self) -> Result<(), String> {
        let checked = match self {
            Self::DeletePoi(DeletePoi(id)) => validate_record_id(id),
            Self::SetSharing(SetSharing { id, .. })
            | Self::DeleteTraveller(DeleteTraveller { id, .. })
            | Self::DeleteLegacyFence(DeleteLegacyFence(id)) => validate_id(id),
            Self::DeleteFence(DeleteFence { owner, id }) => {
                validate_owner(owner).and_then(|()| validate_id(id))
            }
            Self::DeleteTrip(DeleteTrip { id }) => validate_id(id),
            Self::PutFollower(PutFollower { trip, viewer })
            | Self::DeleteFollower(DeleteFollower { trip, viewer }) => {
                validate_id(trip).and_then(|()| validate_id(viewer))
            }
            Self::CreateLink(CreateLink { trip, .. })
            | Self::RevokeLink(RevokeLink { trip, .. }) => validate_id(trip),
            Self::RevokeDevice(RevokeDevice { traveller, .. }) => validate_id(traveller),
            Self::DeletePrivacyZone(DeletePrivacyZone { traveller, zone }) => {
                validate_id(traveller).and_then(|()| validate_id(zone))
            }
            Self::UpsertPoi(_)
            | Self::ImportPois(_)
            | Self::Positions(_)
            | Self::PutLegacyFence(_)
            | Self::PutFence(_)
            | Self::ExpireFences(_)
            | Self::PutTrip(_)
            | Self::TickTrips(_)
            | Self::CreateDevice(_)
            | Self::PutPrivacyZone(_) => Ok(()),
            Self::ImportTrackPoints(ImportTrackPoints { trip, .. }) => validate_id(trip),
        };
        checked.map_err(|e| format!("id: {e}"))
    }
}

/// Create or replace one POI.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpsertPoi(pub Poi);

/// Delete one POI by id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeletePoi(pub String);

/// Apply a whole import at once.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportPois {
    /// Upsert into, or replace, the current set.
    pub mode: ImportMode,
    /// The POIs, in input order (a later one with the same id wins).
    pub pois: Vec<Poi>,
}

/// A batch of validated position reports, received together.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Positions {
    /// When the server received them (Unix ms): ages are clamped to it.
    pub received_ms: i64,
    /// The reports, in arrival order.
    pub updates: Vec<PositionUpdate>,
}

/// Set who may see a traveller.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetSharing {
    /// Traveller id.
    pub id: String,
    /// The new setting.
    pub sharing: Sharing,
}

/// Forget a traveller.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeleteTraveller {
    /// Traveller id.
    pub id: String,
    /// When it was asked (Unix ms), to tell whether a position was still live.
    pub at_ms: i64,
}

/// Create or replace a fence, as format version 1 logged it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PutLegacyFence(pub LegacyFence);

/// Delete a fence by id, as format version 1 logged it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeleteLegacyFence(pub String);

/// Create or replace an owner's fence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PutFence {
    /// The fence, with its owner.
    pub fence: Fence,
    /// Whether its owner is privileged (an admin-scope key): no per-owner quota, and the
    /// whole of the server-wide limits.
    pub privileged: bool,
}

/// Delete an owner's fence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeleteFence {
    /// Its owner.
    pub owner: String,
    /// Its id.
    pub id: String,
}

/// Travellers whose newest position is older than the time-to-live as of `at_ms` leave the
/// fences they were inside (cause `expired`). A single node does this by its own clock
/// every second, unlogged; a cluster's nodes would each do it at their own moment, so
/// there it is a change in the stream, once a second, and every node gives the same exits
/// at the same place in the stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExpireFences {
    /// "Now" for the ages, Unix ms.
    pub at_ms: i64,
}

/// Create or replace a trip.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PutTrip(pub Trip);

/// Delete a trip with its route, followers and links.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeleteTrip {
    /// The trip's id.
    pub id: String,
}

/// Add a follower to a trip.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PutFollower {
    /// The trip's id.
    pub trip: String,
    /// The follower.
    pub viewer: String,
}

/// Remove a follower from a trip.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeleteFollower {
    /// The trip's id.
    pub trip: String,
    /// The follower.
    pub viewer: String,
}

/// Add a share link to a trip (its token's hash, never the token).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CreateLink {
    /// The trip's id.
    pub trip: String,
    /// The link.
    pub link: Link,
}

/// Revoke a trip's share link.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RevokeLink {
    /// The trip's id.
    pub trip: String,
    /// The link's id.
    pub link: String,
}

/// What is due about trips by `at_ms`: trips that started or ended change who sees their
/// travellers, and expired links are dropped. Logged, like a cluster's [`ExpireFences`], so
/// that every node and every replay does it at the same place in the log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TickTrips {
    /// "Now" for what is due, Unix ms.
    pub at_ms: i64,
}

/// Add a device that reports a traveller's positions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CreateDevice {
    /// The device, with its token's hash.
    pub device: Device,
}

/// Revoke a traveller's device.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RevokeDevice {
    /// Its traveller.
    pub traveller: String,
    /// The device's id.
    pub device: String,
}

/// Create or replace a traveller's privacy zone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PutPrivacyZone {
    /// The zone, with its shroud's secret (checked when read back).
    pub zone: PrivacyZone,
}

/// Delete a traveller's privacy zone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeletePrivacyZone {
    /// Its traveller.
    pub traveller: String,
    /// The zone's id.
    pub zone: String,
}

/// A chunk of a recorded track's points into a trip's route.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportTrackPoints {
    /// The trip.
    pub trip: String,
    /// Its points, as the file had them (in its order).
    pub points: Vec<crate::routes::RoutePoint>,
}

/// Which lock orders a kind of change against the others (see the engine's module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// POI writes: the single writer.
    PoiWriter,
    /// Position reports: they commute, so they share the traveller-order lock.
    TravellersShared,
    /// Sharing changes, traveller deletes and fence changes: alone on the traveller-order
    /// lock.
    TravellersExclusive,
}

/// A kind's variant of [`Mutation`]: its index and name, as serde numbers them.
pub(super) trait Variant {
    /// `(index, name)`.
    const VARIANT: (u32, &'static str);
}

/// One kind of [`Mutation`], applied on its own with its own outcome.
pub(super) trait Change: Serialize + Variant {
    /// Which lock orders it.
    const ORDER: Order;
    /// What applying it reports.
    type Outcome: Send + 'static;

    /// Checks what could make applying fail half way, before anything is logged. The
    /// caller holds the kind's lock.
    fn check(&self, _engine: &Engine) -> Result<(), EngineError> {
        Ok(())
    }

    /// Applies the change to memory: the one code path for "do it" (after logging) and
    /// "redo it" (recovery). The caller holds the kind's lock, or is recovery, which runs
    /// alone. `now_ms` is "now" for what the change does not carry a time of its own for:
    /// the engine's clock, or in a cluster the time the stream stored the change, the same
    /// on every node.
    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Self::Outcome, EngineError>;
}

/// Wraps a kind's outcome as an [`Outcome`] and back; declared by `mutations!`, so that
/// each kind's [`Change::Outcome`] is the type its [`Outcome`] variant holds.
pub(super) trait Reported: Change {
    /// The kind's outcome as an [`Outcome`].
    fn report(outcome: Self::Outcome) -> Outcome;
    /// The kind's outcome, if `outcome` is one.
    fn reported(outcome: Outcome) -> Option<Self::Outcome>;
}

/// A change as the log stores it: serialized as its [`Mutation`] variant.
pub(super) struct Logged<'a, C>(pub(super) &'a C);

impl<C: Serialize + Variant> Serialize for Logged<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (index, name) = C::VARIANT;
        serializer.serialize_newtype_variant("Mutation", index, name, self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::persist::{decode, encode};
    use crate::travellers::Visibility;

    /// A change logged through [`Logged`] must be byte for byte the enum's encoding, which
    /// is what recovery decodes (and what logs already on disk hold).
    fn logs_as_its_variant<C: Change + Clone + Into<Mutation>>(change: C) {
        let logged = encode(&Logged(&change)).expect("encodes");
        let mutation: Mutation = change.into();
        assert_eq!(logged, encode(&mutation).expect("encodes"), "{mutation:?}");
        assert_eq!(decode::<Mutation>(&logged).expect("decodes"), mutation);
    }

    #[test]
    fn every_kind_is_logged_as_its_variant_of_the_enum() {
        let poi = Poi::new(
            "p".into(),
            60.0,
            24.0,
            "P".into(),
            "cafe".into(),
            BTreeMap::from([("k".into(), "v".into())]),
            Some(3.0),
        )
        .expect("valid");
        let update = PositionUpdate::new("t".into(), 1.0, 2.0, 3, Some(4.0), Some("trip".into()))
            .expect("valid");
        logs_as_its_variant(UpsertPoi(poi.clone()));
        logs_as_its_variant(DeletePoi("p".into()));
        logs_as_its_variant(ImportPois {
            mode: ImportMode::Replace,
            pois: vec![poi],
        });
        logs_as_its_variant(Positions {
            received_ms: 9,
            updates: vec![update],
        });
        logs_as_its_variant(SetSharing {
            id: "t".into(),
            sharing: Sharing::new(Visibility::Friends, vec!["u".into()]).expect("valid"),
        });
        logs_as_its_variant(DeleteTraveller {
            id: "t".into(),
            at_ms: 7,
        });
        logs_as_its_variant(ExpireFences { at_ms: 8 });
        let area = crate::geometry::area::Area::circle(
            crate::geometry::LatLon { lat: 1.0, lon: 2.0 },
            10.0,
        )
        .expect("valid");
        logs_as_its_variant(PutFence {
            fence: Fence::new(
                "home".into(),
                "key:00ff".into(),
                Some("t".into()),
                crate::fences::FenceKind::Static(area),
            )
            .expect("valid"),
            privileged: false,
        });
        logs_as_its_variant(DeleteFence {
            owner: "key:00ff".into(),
            id: "home".into(),
        });
        logs_as_its_variant(PutTrip(
            Trip::new("trip".into(), "t".into(), "Away".into(), 1, Some(2)).expect("valid"),
        ));
        logs_as_its_variant(DeleteTrip { id: "trip".into() });
        logs_as_its_variant(PutFollower {
            trip: "trip".into(),
            viewer: "mum".into(),
        });
        logs_as_its_variant(DeleteFollower {
            trip: "trip".into(),
            viewer: "mum".into(),
        });
        logs_as_its_variant(CreateLink {
            trip: "trip".into(),
            link: Link::mint(9, Some(1), None).0,
        });
        logs_as_its_variant(RevokeLink {
            trip: "trip".into(),
            link: "00ff".into(),
        });
        logs_as_its_variant(TickTrips { at_ms: 10 });
    }
}
