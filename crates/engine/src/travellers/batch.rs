//! [`TravellerIndex::update_batch`]: a batch of position reports applied a shard at a time.
//!
//! Applying a batch report by report took and released a shard's lock for each, and each
//! lock is an atomic read-modify-write that the CPU does not reorder loads across, so the
//! cache misses of one report (the id table, the record, the trail) could not overlap the
//! next report's. Grouped by shard, a batch of 1,000 takes each of the ~250 shards it
//! touches once. Each traveller's reports keep their order (one traveller is in one
//! shard), and travellers are independent in the index, so the index ends as it would
//! report by report.

use super::index::TravellerIndex;
use super::shard::handle;
use super::{PositionUpdate, Seen, UpdateOutcome};

impl TravellerIndex {
    /// Applies `updates`, received at `received_ms`, as [`TravellerIndex::update_then`]
    /// would one by one, and calls `each` with each one's index in `updates`, its outcome,
    /// and, if it moved its traveller, the traveller as it is now (its shard still locked:
    /// `each` must not lock another traveller). Calls come a shard at a time, each
    /// traveller's in the batch's order.
    pub fn update_batch(
        &self,
        updates: &[PositionUpdate],
        received_ms: i64,
        mut each: impl FnMut(usize, UpdateOutcome, Option<Seen<'_>>),
    ) {
        let mut order: Vec<(u32, u64, u32)> = updates
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (hash, shard) = self.locate(&u.id);
                (shard as u32, hash, i as u32)
            })
            .collect();
        // Stable by shard, so each traveller's reports stay in order.
        order.sort_by_key(|&(shard, _, _)| shard);
        let mut at = 0;
        while at < order.len() {
            let s = order[at].0 as usize;
            let mut shard = self.shards[s].write();
            while at < order.len() && order[at].0 as usize == s {
                let (_, hash, i) = order[at];
                at += 1;
                let u = &updates[i as usize];
                let slot = match shard.find(hash, &u.id) {
                    Some(slot) => slot,
                    None => {
                        let seen_ms = u.ts.min(received_ms);
                        if received_ms.saturating_sub(seen_ms) > self.config.ttl_ms {
                            // Already expired: nothing to create.
                            each(i as usize, UpdateOutcome::Stale, None);
                            continue;
                        }
                        shard.insert(hash, &u.id, &self.hasher)
                    }
                };
                let h = handle(s, slot);
                let outcome = self.apply(h, shard.record_mut(slot), u, received_ms);
                let seen =
                    (outcome == UpdateOutcome::Applied).then(|| self.seen(h, shard.record(slot)));
                each(i as usize, outcome, seen);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::geometry::LatLon;
    use crate::travellers::TravellerConfig;

    const IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

    fn config() -> TravellerConfig {
        TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 60_000,
        }
    }

    fn update((id, ts, lat, lon): (usize, i64, f64, f64)) -> PositionUpdate {
        PositionUpdate {
            id: IDS[id].to_string(),
            position: LatLon { lat, lon },
            ts,
            accuracy_m: None,
            trip_id: None,
        }
    }

    proptest! {
        /// A batch applied a shard at a time leaves the index as the same reports applied
        /// one by one, and gives each report the same outcome: repeated, late, expired and
        /// out-of-order reports of the same travellers, across cells.
        #[test]
        fn a_batch_equals_its_reports_one_by_one(
            batches in prop::collection::vec(
                prop::collection::vec((0..IDS.len(), 0i64..200_000, -89.0f64..89.0, -179.0f64..179.0), 0..40),
                1..5,
            )
        ) {
            let batched = TravellerIndex::new(config());
            let single = TravellerIndex::new(config());
            let mut now = 100_000;
            for batch in batches {
                let updates: Vec<PositionUpdate> = batch.into_iter().map(update).collect();
                let mut outcomes = vec![None; updates.len()];
                batched.update_batch(&updates, now, |i, outcome, _| outcomes[i] = Some(outcome));
                for (i, u) in updates.iter().enumerate() {
                    prop_assert_eq!(Some(single.update(u, now)), outcomes[i], "report {}", i);
                }
                now += 30_000;
            }
            let export = |index: &TravellerIndex| {
                let mut all = Vec::new();
                index.export(|r| { all.push(r); Ok::<(), ()>(()) }).expect("export");
                all.sort_by(|a, b| a.id.cmp(&b.id));
                all
            };
            prop_assert_eq!(export(&batched), export(&single));
            prop_assert_eq!(batched.len(), single.len());
            let everywhere = crate::geometry::BBox::new(-180.0, -90.0, 180.0, 90.0).expect("box");
            let mut in_batched = Vec::new();
            batched.for_each_public_in(&everywhere, now, |p| in_batched.push((p.lat.to_bits(), p.lon.to_bits())));
            let mut in_single = Vec::new();
            single.for_each_public_in(&everywhere, now, |p| in_single.push((p.lat.to_bits(), p.lon.to_bits())));
            in_batched.sort_unstable();
            in_single.sort_unstable();
            prop_assert_eq!(in_batched, in_single);
        }
    }
}
