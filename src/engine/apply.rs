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

    /// Applies a mutation to memory. The caller holds the lock the mutation's kind needs
    /// (see the module doc of [`super`]), or is recovery, which runs alone.
    pub(super) fn apply_in_memory(&self, mutation: Mutation) -> Result<Applied, EngineError> {
        Ok(match mutation {
            Mutation::UpsertPoi(poi) => Applied::PoiStored {
                created: self.pois.write().upsert(poi)?,
            },
            Mutation::DeletePoi(id) => Applied::PoiDeleted {
                existed: self.pois.write().remove(&id),
            },
            Mutation::ImportPois { mode, pois } => {
                let count = pois.len();
                let rebuilt = match mode {
                    ImportMode::Replace => PoiIndex::from_pois(pois)?,
                    ImportMode::Upsert if count <= IN_PLACE_IMPORT_MAX => {
                        let mut index = self.pois.write();
                        for poi in pois {
                            index.upsert(poi)?;
                        }
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
