//! Each kind of [`Mutation`](super::Mutation) as a [`Change`]: the lock that orders it, what
//! it checks before it is logged, and how it is applied to memory, the one code path for
//! "do it" (after logging) and "redo it" (recovery replays the log through here).

use super::mutation::{
    Change, DeleteFence, DeleteLegacyFence, DeletePoi, DeleteTraveller, ExpireFences, ImportMode,
    ImportPois, Order, Positions, PutFence, PutLegacyFence, SetSharing, UpsertPoi,
};
use super::{Engine, EngineError, PositionCounts, Removed, Stored};
use crate::events::Cause;
use crate::fences::{Fence, FenceKey, OPEN_OWNER};
use crate::pois::PoiIndex;
use crate::travellers::{SeenAt, UpdateOutcome};

/// Upsert imports up to this many POIs are always applied in place, under the write lock
/// (a few milliseconds).
const IN_PLACE_IMPORT_SMALL: usize = 2_048;

/// Upsert imports up to this many POIs are applied in place if they are also at most an
/// eighth of the index. In place, each POI holds the write lock ~5 µs (20,000 took 0.11 s
/// over HTTP on 1M POIs), so readers wait up to ~80 ms. Building beside copies every
/// record and rebuilds every tree: on 1M POIs 1.3 s and 266 MB of RSS for a 5,000-POI
/// import, about ten times that on 10M. Past an eighth of the index, beside is cheaper.
const IN_PLACE_IMPORT_MAX: usize = 16_384;

/// Whether an upsert import of `count` POIs into an index of `len` POIs is applied in place
/// rather than built beside the live index.
fn import_in_place(count: usize, len: usize) -> bool {
    count <= IN_PLACE_IMPORT_SMALL || (count <= IN_PLACE_IMPORT_MAX && count <= len / 8)
}

impl Change for UpsertPoi {
    const ORDER: Order = Order::PoiWriter;
    type Outcome = Stored;

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        Ok(engine
            .pois
            .read()
            .check_categories(std::slice::from_ref(&self.0))?)
    }

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<Stored, EngineError> {
        let created = engine.pois.write().upsert(self.0)?;
        engine.rebuild_poi_trees_if_due();
        Ok(Stored { created })
    }
}

impl Change for DeletePoi {
    const ORDER: Order = Order::PoiWriter;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<Removed, EngineError> {
        let existed = engine.pois.write().remove(&self.0);
        engine.rebuild_poi_trees_if_due();
        Ok(Removed { existed })
    }
}

impl Change for ImportPois {
    const ORDER: Order = Order::PoiWriter;
    type Outcome = ();

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        match self.mode {
            ImportMode::Upsert => engine.pois.read().check_categories(&self.pois)?,
            ImportMode::Replace => PoiIndex::new().check_categories(&self.pois)?,
        }
        Ok(())
    }

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<(), EngineError> {
        let rebuilt = match self.mode {
            ImportMode::Replace => PoiIndex::from_pois(self.pois)?,
            ImportMode::Upsert if import_in_place(self.pois.len(), engine.pois.read().len()) => {
                let mut index = engine.pois.write();
                for poi in self.pois {
                    index.upsert(poi)?;
                }
                drop(index);
                engine.rebuild_poi_trees_if_due();
                return Ok(());
            }
            ImportMode::Upsert => engine.pois.read().with_upserts(self.pois)?,
        };
        let old = std::mem::replace(&mut *engine.pois.write(), rebuilt);
        drop(old); // freed after the write lock is released
        Ok(())
    }
}

impl Change for Positions {
    const ORDER: Order = Order::TravellersShared;
    type Outcome = PositionCounts;

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        // The route store's bound: while it is behind, a batch that would add trip points
        // is refused whole (nothing logged); one with none goes on.
        if engine.routes.behind()
            && engine
                .trips
                .holds_any(self.updates.iter().map(|u| (u.id.as_str(), u.ts)))
        {
            engine.routes.refuse();
            return Err(EngineError::RoutesBehind);
        }
        Ok(())
    }

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<PositionCounts, EngineError> {
        let now = self.received_ms;
        // Fences and live maps are judged after the write (off its path on a single node):
        // here a moved traveller is only marked, and only if anything could care.
        let observed = engine.has_observers();
        engine.store_route_points(&self.updates);
        let mut applied = 0;
        // On its own thread, judging is told a batch's moves under one lock, once the batch
        // is in; judged inline (a cluster, tests), each move is judged as it is applied.
        let background = engine.judging.is_background();
        let mut moved = Vec::new();
        let seen_at = |u: &crate::travellers::PositionUpdate| SeenAt {
            position: u.position,
            ts: u.ts,
            seen_ms: u.ts.min(now),
        };
        if observed && !background {
            for u in &self.updates {
                if engine.travellers.update(u, now) == UpdateOutcome::Applied {
                    applied += 1;
                    engine.changed(&u.id, Cause::Moved, now, Some(seen_at(u)));
                }
            }
        } else {
            // Judged after the batch, or not at all: applied shard by shard (a traveller's
            // reports still in the batch's order), which is faster.
            engine
                .travellers
                .update_each(&self.updates, now, |i, handle| {
                    applied += 1;
                    if observed {
                        let u = &self.updates[i];
                        moved.push((u.id.as_str(), seen_at(u), handle));
                    }
                });
        }
        if !moved.is_empty() {
            engine.judging.mark_moved(moved, now);
        }
        Ok(PositionCounts {
            applied,
            stale: self.updates.len() - applied,
        })
    }
}

impl Change for SetSharing {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<(), EngineError> {
        engine.judge_pending(&self.id);
        engine.travellers.set_sharing(&self.id, self.sharing);
        if engine.has_observers() {
            // Judged where it stands now, before any move it makes after.
            let at = engine.travellers.seen_at(&self.id);
            engine.changed(&self.id, Cause::Sharing, now_ms, at);
        }
        Ok(())
    }
}

impl Change for DeleteTraveller {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<Removed, EngineError> {
        engine.judge_pending(&self.id);
        let mut existed = engine.travellers.delete(&self.id, self.at_ms);
        existed |= engine.delete_trips_of(&self.id);
        existed |= engine.devices.revoke_all(&self.id) > 0;
        existed |= engine.forget_privacy_zones(&self.id);
        if engine.has_observers() {
            engine.changed(&self.id, Cause::Deleted, self.at_ms, None);
        }
        Ok(Removed { existed })
    }
}

impl Change for PutFence {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Stored;

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        engine.fences.check_room(&self.fence, self.privileged)?;
        // A roaming fence goes only around a traveller its viewer may see now; around
        // anyone else it is refused as a traveller that does not exist would be.
        let now = engine.now_ms();
        if let Some(around) = self.fence.around()
            && !engine
                .travellers
                .with_seen(around, |seen| seen.live(now) && self.fence.sees(seen))
                .unwrap_or(false)
        {
            return Err(EngineError::NotVisible {
                field: "roaming.around",
                id: around.to_string(),
            });
        }
        Ok(())
    }

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Stored, EngineError> {
        Ok(Stored {
            created: engine.store_fence(self.fence, now_ms),
        })
    }
}

impl Change for DeleteFence {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Removed, EngineError> {
        Ok(Removed {
            existed: engine
                .fences
                .delete(&FenceKey::new(&self.owner, &self.id), now_ms),
        })
    }
}

impl Change for PutLegacyFence {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Stored;

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Stored, EngineError> {
        let fence = Fence::try_from(self.0)
            .map_err(|e| EngineError::Replicated(format!("a logged fence: {e}")))?;
        Ok(Stored {
            created: engine.store_fence(fence, now_ms),
        })
    }
}

impl Change for DeleteLegacyFence {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Removed, EngineError> {
        Ok(Removed {
            existed: engine
                .fences
                .delete(&FenceKey::new(OPEN_OWNER, &self.0), now_ms),
        })
    }
}

impl Change for ExpireFences {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<(), EngineError> {
        engine.fences.expire(self.at_ms);
        Ok(())
    }
}

impl Engine {
    /// Stores a fence (the apply of a fence change, live and on replay). In a cluster, the
    /// first fence after there were none begins a new interval of event numbers (see
    /// [`crate::events`]), at the same place on every node.
    fn store_fence(&self, fence: Fence, now_ms: i64) -> bool {
        // The fence judges everyone where they are now: changes made before it must not
        // reach it later.
        self.judging.keep_newest_only();
        if self.fences.count() == 0 {
            self.events()
                .new_interval(u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0));
        }
        self.fences.put(fence, &self.travellers, now_ms)
    }

    /// Rebuilds the POI index's packed trees once its writes since the last build are due
    /// (see [`PoiIndex::rebuild_due`]). The trees are built under the read lock, so queries
    /// go on meanwhile, and swapped in under a short write lock. The caller holds the writer
    /// mutex (or is recovery), so no write comes in between; if one did, the trees would be
    /// refused and the delta would keep serving.
    fn rebuild_poi_trees_if_due(&self) {
        let trees = {
            let index = self.pois.read();
            if !index.rebuild_due() {
                return;
            }
            index.build_trees()
        };
        let installed = self.pois.write().install_trees(trees);
        debug_assert!(installed, "POI writes are serialized");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::{EngineConfig, LiveConfig};
    use crate::geometry::LatLon;
    use crate::import::ParsedPois;
    use crate::pois::{CursorKey, NearbyQuery, Poi, PoiFilter};
    use crate::travellers::TravellerConfig;

    fn engine() -> Engine {
        Engine::new(EngineConfig {
            cursor_key: CursorKey::random(),
            clock: Arc::new(ManualClock::new(1_800_000_000_000)),
            travellers: TravellerConfig {
                trail_capacity: 4,
                ttl_ms: 3_600_000,
            },
            routes: Default::default(),
            live: LiveConfig::default(),
        })
    }

    /// Where the `i`-th test POI is: spread over the globe.
    fn at(i: u32) -> (f64, f64) {
        (f64::from(i % 170) - 85.0, f64::from(i * 7 % 360) - 180.0)
    }

    fn cafe(id: String, (lat, lon): (f64, f64)) -> Poi {
        Poi::new(
            id,
            lat,
            lon,
            String::new(),
            "cafe".into(),
            BTreeMap::new(),
            None,
        )
        .expect("valid")
    }

    fn cafes(prefix: &str, n: u32) -> ParsedPois {
        ParsedPois {
            pois: (0..n)
                .map(|i| cafe(format!("{prefix}{i}"), at(i)))
                .collect(),
            ..ParsedPois::default()
        }
    }

    #[test]
    fn mid_sized_upsert_imports_into_a_large_index_are_applied_in_place() {
        let engine = engine();
        let import = |parsed, mode| {
            let written = engine.import_pois(parsed, mode, false).expect("valid");
            written.wait().expect("no log to fail");
        };
        import(cafes("base", 30_000), ImportMode::Replace);
        // 3,000 is past the small size but within an eighth of 30,000: in place, so the new
        // POIs wait in the delta instead of the whole index being copied and rebuilt.
        import(cafes("mid", 3_000), ImportMode::Upsert);
        {
            let index = engine.pois.read();
            assert_eq!(index.len(), 33_000);
            assert_eq!(index.delta.size(), 3_000);
        }
        // 5,000 is more than an eighth of 33,000: built beside, every POI in packed trees.
        import(cafes("big", 5_000), ImportMode::Upsert);
        let index = engine.pois.read();
        assert_eq!(index.len(), 38_000);
        assert_eq!(index.delta.size(), 0);
        for id in ["base17", "mid2999", "big4999"] {
            assert!(index.get(id).is_some(), "{id} is stored");
        }
    }

    #[test]
    fn single_writes_past_the_floor_rebuild_the_packed_trees() {
        let engine = engine();
        for i in 0..5_000u32 {
            engine
                .upsert_poi(cafe(format!("p{i}"), at(i)))
                .expect("in memory")
                .wait()
                .expect("no log to fail");
        }
        let index = engine.pois.read();
        assert_eq!(index.len(), 5_000);
        assert!(
            index.delta.size() < 5_000 && !index.rebuild_due(),
            "the writes past the floor were folded into the packed tree"
        );
        for i in (0..5_000u32).step_by(97) {
            let (lat, lon) = at(i);
            let query = NearbyQuery {
                center: LatLon::new(lat, lon).expect("valid"),
                radius_m: Some(0.0),
                limit: 100,
                filter: PoiFilter::default(),
                after: None,
            };
            let page = index.nearby(&query);
            assert!(page.items.iter().any(|h| h.poi.id() == format!("p{i}")));
        }
    }
}
