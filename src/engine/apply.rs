//! Applying a [`Mutation`] to memory: the one code path for "do it" (after logging) and
//! "redo it" (recovery replays the log through here).

use super::{Applied, Engine, EngineError, ImportMode, Mutation};
use crate::pois::PoiIndex;
use crate::travellers::UpdateOutcome;

/// Imports up to this many POIs are applied in place under the write lock (a few
/// milliseconds); larger ones are built beside the live index and swapped in.
const IN_PLACE_IMPORT_MAX: usize = 2_048;

impl Engine {
    /// Checks what could make a POI mutation fail half way, before it is logged.
    pub(super) fn precheck(&self, mutation: &Mutation) -> Result<(), EngineError> {
        match mutation {
            Mutation::UpsertPoi(poi) => self
                .pois
                .read()
                .check_categories(std::slice::from_ref(poi))?,
            Mutation::ImportPois {
                mode: ImportMode::Upsert,
                pois,
            } => self.pois.read().check_categories(pois)?,
            Mutation::ImportPois {
                mode: ImportMode::Replace,
                pois,
            } => PoiIndex::new().check_categories(pois)?,
            Mutation::DeletePoi(_)
            | Mutation::Positions { .. }
            | Mutation::SetSharing { .. }
            | Mutation::DeleteTraveller { .. } => {}
        }
        Ok(())
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

    /// Applies a mutation to memory. The caller holds the lock the mutation's kind needs
    /// (see the module doc of [`super`]), or is recovery, which runs alone.
    pub(super) fn apply_in_memory(&self, mutation: Mutation) -> Result<Applied, EngineError> {
        Ok(match mutation {
            Mutation::UpsertPoi(poi) => {
                let created = self.pois.write().upsert(poi)?;
                self.rebuild_poi_trees_if_due();
                Applied::PoiStored { created }
            }
            Mutation::DeletePoi(id) => {
                let existed = self.pois.write().remove(&id);
                self.rebuild_poi_trees_if_due();
                Applied::PoiDeleted { existed }
            }
            Mutation::ImportPois { mode, pois } => {
                let count = pois.len();
                let rebuilt = match mode {
                    ImportMode::Replace => PoiIndex::from_pois(pois)?,
                    ImportMode::Upsert if count <= IN_PLACE_IMPORT_MAX => {
                        let mut index = self.pois.write();
                        for poi in pois {
                            index.upsert(poi)?;
                        }
                        drop(index);
                        self.rebuild_poi_trees_if_due();
                        return Ok(Applied::Imported { count });
                    }
                    ImportMode::Upsert => self.pois.read().with_upserts(pois)?,
                };
                let old = std::mem::replace(&mut *self.pois.write(), rebuilt);
                drop(old); // freed after the write lock is released
                Applied::Imported { count }
            }
            Mutation::Positions {
                received_ms,
                updates,
            } => {
                let applied = updates
                    .iter()
                    .filter(|u| self.travellers.update(u, received_ms) == UpdateOutcome::Applied)
                    .count();
                Applied::Positions {
                    applied,
                    stale: updates.len() - applied,
                }
            }
            Mutation::SetSharing { id, sharing } => {
                self.travellers.set_sharing(&id, sharing);
                Applied::SharingSet
            }
            Mutation::DeleteTraveller { id, at_ms } => Applied::TravellerDeleted {
                existed: self.travellers.delete(&id, at_ms),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::EngineConfig;
    use crate::geometry::LatLon;
    use crate::pois::{CursorKey, NearbyQuery, Poi, PoiFilter};
    use crate::travellers::TravellerConfig;

    #[test]
    fn single_writes_past_the_floor_rebuild_the_packed_trees() {
        let engine = Engine::new(EngineConfig {
            cursor_key: CursorKey::random(),
            clock: Arc::new(ManualClock::new(1_800_000_000_000)),
            travellers: TravellerConfig {
                trail_capacity: 4,
                ttl_ms: 3_600_000,
            },
        });
        let at = |i: u32| (f64::from(i % 170) - 85.0, f64::from(i * 7 % 360) - 180.0);
        for i in 0..5_000u32 {
            let (lat, lon) = at(i);
            let poi = Poi::new(
                format!("p{i}"),
                lat,
                lon,
                String::new(),
                "cafe".into(),
                BTreeMap::new(),
                None,
            )
            .expect("valid");
            let (_, ticket) = engine.upsert_poi(poi).expect("in memory");
            ticket.wait().expect("no log to fail");
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
