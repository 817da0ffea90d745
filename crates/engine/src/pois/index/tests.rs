//! The index's invariants kept through upserts, removals and rebuilds, and bulk builds
//! equal to incremental ones.

use super::trees::{entry_of, packed_entry_of};
use super::*;
use crate::pois::packed::DEAD;
use std::collections::BTreeMap;

fn poi(id: &str, lat: f64, lon: f64, category: &str) -> Poi {
    Poi::new(
        id.into(),
        lat,
        lon,
        format!("n{id}"),
        category.into(),
        BTreeMap::new(),
        None,
    )
    .expect("valid test POI")
}

fn assert_invariants(index: &PoiIndex) {
    assert_eq!(index.base.live() + index.delta.size(), index.len());
    let mut seen = vec![false; index.records.len()];
    for e in index.base.all_entries() {
        if e.slot == DEAD {
            continue;
        }
        assert!(!std::mem::replace(&mut seen[e.slot as usize], true));
        let expected = packed_entry_of(index.record(e.slot), e.slot);
        assert_eq!(
            (e.position, e.rating.to_bits(), e.category),
            (
                expected.position,
                expected.rating.to_bits(),
                expected.category
            )
        );
    }
    for (category, tree) in &index.rare {
        let live: Vec<u32> = tree
            .all_entries()
            .iter()
            .map(|e| e.slot)
            .filter(|&s| s != DEAD)
            .collect();
        let mut want: Vec<u32> = index
            .base
            .all_entries()
            .iter()
            .filter(|e| e.slot != DEAD && e.category == *category)
            .map(|e| e.slot)
            .collect();
        let mut live = live;
        live.sort_unstable();
        want.sort_unstable();
        assert_eq!(live, want, "category {category}'s tree");
        assert_eq!(tree.live(), want.len());
    }
    for entry in index.delta.iter() {
        let slot = entry.data.slot;
        assert!(!std::mem::replace(&mut seen[slot as usize], true));
        assert_eq!(*entry, entry_of(index.record(slot), slot));
    }
    for (slot, record) in index.records.iter().enumerate() {
        assert_eq!(seen[slot], record.is_some());
        if let Some(r) = record {
            assert_eq!(index.slot_of(r.id()), Some(slot as u32));
        }
    }
}

#[test]
fn upsert_replace_and_remove_keep_trees_and_ids_in_step() {
    let mut index = PoiIndex::new();
    assert!(
        index
            .upsert(poi("a", 1.0, 1.0, "cafe"))
            .expect("room for categories")
    );
    assert!(
        index
            .upsert(poi("b", 2.0, 2.0, "museum"))
            .expect("room for categories")
    );
    assert!(
        !index
            .upsert(poi("a", 3.0, 3.0, "museum"))
            .expect("room for categories")
    );
    assert_eq!(index.len(), 2);
    assert_eq!(
        index.get("a").map(|p| p.category),
        Some("museum".to_string())
    );
    assert_invariants(&index);
    assert!(index.remove("a"));
    assert!(!index.remove("a"));
    assert_eq!(index.get("a"), None);
    assert!(
        index
            .upsert(poi("c", 4.0, 4.0, "cafe"))
            .expect("room for categories")
    );
    assert_eq!(index.records.len(), 2, "the freed slot is reused");
    assert_invariants(&index);
}

#[test]
fn writes_move_entries_between_the_trees_and_rebuilds_fold_them_back() {
    let pois: Vec<Poi> = (0..200)
        .map(|i| {
            poi(
                &format!("p{i}"),
                f64::from(i % 80),
                f64::from(i) - 100.0,
                "a",
            )
        })
        .collect();
    let mut index = PoiIndex::from_pois(pois).expect("few categories");
    index.set_rebuild_floor(30);
    assert_eq!((index.base.live(), index.delta.size()), (200, 0));
    // A moved POI leaves a dead entry in the packed tree and a live one in the delta.
    for i in 0..15 {
        index
            .upsert(poi(&format!("p{i}"), -10.0, f64::from(i), "b"))
            .expect("few categories");
        index.rebuild_if_due();
        assert_invariants(&index);
    }
    assert_eq!((index.base.live(), index.delta.size()), (185, 15));
    index
        .upsert(poi("p15", -10.0, 15.0, "b"))
        .expect("few categories");
    assert!(index.rebuild_due());
    // Trees built before a write are refused: they would miss it.
    let stale = index.build_trees();
    index
        .upsert(poi("p15", -10.0, 15.5, "b"))
        .expect("few categories");
    assert!(!index.install_trees(stale));
    assert_invariants(&index);
    let fresh = index.build_trees();
    assert!(index.install_trees(fresh));
    assert_eq!(
        (index.base.live(), index.delta.size()),
        (200, 0),
        "32 stale entries (16 dead, 16 new) rebuild the packed tree"
    );
    assert_invariants(&index);
    for i in 0..30 {
        index
            .upsert(poi(&format!("new{i}"), 5.0, f64::from(i), "a"))
            .expect("few categories");
        index.rebuild_if_due();
    }
    assert_eq!((index.base.live(), index.delta.size()), (200, 30));
    assert_invariants(&index);
    for i in 0..40 {
        assert!(index.remove(&format!("p{i}")));
        index.rebuild_if_due();
        assert_invariants(&index);
    }
    assert_eq!(index.len(), 190);
}

#[test]
fn bulk_builds_match_incremental_ones() {
    let pois: Vec<Poi> = (0..500)
        .map(|i| {
            poi(
                &format!("p{}", i % 400),
                f64::from(i % 170) - 85.0,
                f64::from(i % 360) - 180.0,
                ["a", "b", "c"][i as usize % 3],
            )
        })
        .collect();
    let bulk = PoiIndex::from_pois(pois.clone()).expect("few categories");
    let mut incremental = PoiIndex::new();
    for p in pois.clone() {
        incremental.upsert(p).expect("few categories");
    }
    assert_invariants(&bulk);
    let mut a: Vec<Poi> = bulk.iter().collect();
    let mut b: Vec<Poi> = incremental.iter().collect();
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(a, b);
    let upserted = PoiIndex::new().with_upserts(pois).expect("few categories");
    assert_invariants(&upserted);
    assert_eq!(upserted.len(), 400);
}

proptest::proptest! {
    /// The category listing counts what the POIs hold now: a category every POI of which
    /// was deleted or moved to another category is not listed.
    #[test]
    fn category_counts_are_those_of_the_live_pois(
        writes in proptest::collection::vec((0u8..12, proptest::option::of(0u8..4)), 0..80)
    ) {
        let mut index = PoiIndex::new();
        let mut model: BTreeMap<String, String> = BTreeMap::new();
        for (id, category) in writes {
            let id = format!("p{id}");
            match category {
                Some(c) => {
                    let c = format!("c{c}");
                    index.upsert(poi(&id, 1.0, 2.0, &c)).expect("few categories");
                    model.insert(id, c);
                }
                None => {
                    proptest::prop_assert_eq!(index.remove(&id), model.remove(&id).is_some());
                }
            }
        }
        let mut want: BTreeMap<&str, u64> = BTreeMap::new();
        for c in model.values() {
            *want.entry(c).or_default() += 1;
        }
        let mut want: Vec<(&str, u64)> = want.into_iter().collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        proptest::prop_assert_eq!(index.category_counts(), want);
    }
}
