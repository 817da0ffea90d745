//! The POI index checked against the obvious slow version: every query answered by a linear
//! scan with the same haversine, over random data that forces in the hard places (the
//! antimeridian, the poles, duplicate positions and so ties, zero and Earth-sized radii).

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::{AreaQuery, NearbyQuery, Poi, PoiFilter, PoiIndex, WithinQuery};
use crate::geometry::area::Area;
use crate::geometry::{BBox, LatLon, MAX_RADIUS_M, haversine_m};
use crate::testing::areas::{area_case, oracle, points};

const CATEGORIES: [&str; 4] = ["cafe", "museum", "hotel", "rare"];

/// Coordinates biased towards the seams: the poles, the antimeridian (both spellings), a
/// dense cluster, and exact repeats from a small pool.
fn coordinate() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        3 => (-90.0..=90.0f64, -180.0..=180.0f64),
        1 => (prop_oneof![Just(90.0), Just(-90.0), 89.99..90.0f64, -90.0..-89.99f64], -180.0..=180.0f64),
        1 => (-60.0..60.0f64, prop_oneof![Just(180.0), Just(-180.0), 179.99..=180.0f64, -180.0..-179.99f64]),
        1 => (60.16..60.18f64, 24.93..24.95f64),
        1 => prop::sample::select(vec![(0.0, 0.0), (60.17, 24.94), (90.0, 0.0), (-90.0, 45.0), (10.0, 180.0), (10.0, -180.0)]),
    ]
}

fn poi_at(i: usize, (lat, lon): (f64, f64), category: usize, rating: Option<f64>) -> Poi {
    Poi::new(
        format!("p{i}"),
        lat,
        lon,
        String::new(),
        CATEGORIES[category].to_string(),
        BTreeMap::new(),
        rating,
    )
    .expect("generated POIs are valid")
}

fn pois(max: usize) -> impl Strategy<Value = Vec<Poi>> {
    prop::collection::vec(
        (
            coordinate(),
            prop::sample::select(vec![0usize, 0, 0, 1, 1, 1, 2, 2, 3]),
            prop::option::of(0.0..=5.0f64),
        ),
        0..max,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (c, cat, r))| poi_at(i, c, cat, r))
            .collect()
    })
}

fn radius() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        Just(Some(0.0)),
        Just(Some(MAX_RADIUS_M)),
        (0.0..5_000.0f64).prop_map(Some),
        (0.0..3_000_000.0f64).prop_map(Some),
        (19_000_000.0..MAX_RADIUS_M).prop_map(Some),
    ]
}

fn filter() -> impl Strategy<Value = PoiFilter> {
    (
        prop::collection::vec(
            prop::sample::select(vec!["cafe", "museum", "hotel", "rare", "unknown"]),
            0..3,
        ),
        prop::option::of(0.0..=5.0f64),
    )
        .prop_map(|(cats, min_rating)| PoiFilter {
            categories: cats.into_iter().map(String::from).collect(),
            min_rating,
        })
}

fn passes(filter: &PoiFilter, p: &Poi) -> bool {
    (filter.categories.is_empty() || filter.categories.contains(&p.category))
        && filter
            .min_rating
            .is_none_or(|m| p.rating.is_some_and(|r| r >= m))
}

/// Every match of a nearby query, ranked, by linear scan.
fn oracle_nearby(
    all: &[Poi],
    center: LatLon,
    radius: Option<f64>,
    filter: &PoiFilter,
) -> Vec<(String, f64)> {
    let mut hits: Vec<(String, f64)> = all
        .iter()
        .filter(|p| passes(filter, p))
        .map(|p| (p.id.clone(), haversine_m(center, p.position)))
        .filter(|(_, d)| radius.is_none_or(|r| *d <= r))
        .collect();
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    hits
}

/// Every match of a box query, by id, by linear scan.
fn oracle_within(all: &[Poi], bbox: &BBox, filter: &PoiFilter) -> Vec<String> {
    let mut ids: Vec<String> = all
        .iter()
        .filter(|p| passes(filter, p) && bbox.contains(p.position))
        .map(|p| p.id.clone())
        .collect();
    ids.sort();
    ids
}

/// The last POI for each id wins, as in an upsert.
fn latest(pois: &[Poi]) -> Vec<Poi> {
    let mut by_id: HashMap<&str, &Poi> = HashMap::new();
    for p in pois {
        by_id.insert(&p.id, p);
    }
    by_id.into_values().cloned().collect()
}

/// Pages through a nearby query with `after`, as the cursor does, up to `pages` pages.
fn paged_nearby(index: &PoiIndex, mut query: NearbyQuery, pages: usize) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for _ in 0..pages {
        let page = index.nearby(&query);
        out.extend(
            page.items
                .iter()
                .map(|h| (h.poi.id().to_string(), h.distance_m)),
        );
        match page.items.last() {
            Some(last) if page.more => {
                query.after = Some((last.distance_m, last.poi.id().to_string()))
            }
            _ => break,
        }
    }
    out
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn nearby_equals_the_brute_force_oracle(
        all in pois(300),
        center in coordinate(),
        radius in radius(),
        limit in 1usize..40,
        filter in filter(),
    ) {
        let index = PoiIndex::from_pois(all.clone()).expect("few categories");
        let center = LatLon::new(center.0, center.1).expect("valid");
        let expected = oracle_nearby(&all, center, radius, &filter);
        let query = NearbyQuery { center, radius_m: radius, limit, filter, after: None };
        let page = index.nearby(&query);
        let got: Vec<(String, f64)> = page.items.iter().map(|h| (h.poi.id().to_string(), h.distance_m)).collect();
        let want: Vec<(String, f64)> = expected.iter().take(limit).cloned().collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(page.more, expected.len() > limit);
        // Paging through every page yields the whole ranking: nothing twice, nothing skipped.
        prop_assert_eq!(paged_nearby(&index, query, 1000), expected);
    }

    #[test]
    fn within_equals_the_brute_force_oracle(
        all in pois(300),
        corners in (coordinate(), coordinate()),
        limit in 1usize..40,
        filter in filter(),
    ) {
        let ((lat_a, lon_a), (lat_b, lon_b)) = corners;
        // Any two longitudes make a box (west may be east of east: it then crosses 180°).
        let bbox = BBox::new(lon_a, lat_a.min(lat_b), lon_b, lat_a.max(lat_b)).expect("valid");
        let index = PoiIndex::from_pois(all.clone()).expect("few categories");
        let expected = oracle_within(&all, &bbox, &filter);
        let mut query = WithinQuery { bbox, limit, filter, after: None };
        let mut got = Vec::new();
        loop {
            let page = index.within(&query);
            prop_assert!(page.items.len() <= limit);
            got.extend(page.items.iter().map(|p| p.id().to_string()));
            match page.items.last() {
                Some(last) if page.more => query.after = Some(last.id().to_string()),
                _ => break,
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn within_an_area_equals_the_brute_force_oracle(
        case in area_case(),
        unit in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 0..150),
        categories in prop::collection::vec((prop::sample::select(vec![0usize, 0, 1, 2, 3]), prop::option::of(0.0..=5.0f64)), 400),
        far in pois(40),
        limit in 1usize..40,
        filter in filter(),
    ) {
        // POIs around the area, on its vertices and edges, on the seams, and anywhere.
        let rings = case.rings();
        let near = points(&rings, &unit);
        let mut all: Vec<Poi> = near
            .iter()
            .zip(categories.iter().cycle())
            .enumerate()
            .map(|(i, (p, (cat, r)))| poi_at(i, (p.lat, p.lon), *cat, *r))
            .collect();
        all.extend(far.into_iter().map(|p| Poi { id: format!("far-{}", p.id), ..p }));
        let index = PoiIndex::from_pois(all.clone()).expect("few categories");
        let mut expected: Vec<String> = all
            .iter()
            .filter(|p| passes(&filter, p) && oracle(&rings, p.position))
            .map(|p| p.id.clone())
            .collect();
        expected.sort();
        let mut query = AreaQuery { area: case.area(), limit, filter, after: None };
        let mut got = Vec::new();
        loop {
            let page = index.within_area(&query);
            prop_assert!(page.items.len() <= limit);
            got.extend(page.items.iter().map(|p| p.id().to_string()));
            match page.items.last() {
                Some(last) if page.more => query.after = Some(last.id().to_string()),
                _ => break,
            }
        }
        prop_assert_eq!(got, expected, "{:?}", case);
    }

    #[test]
    fn within_a_circle_equals_the_brute_force_oracle(
        all in pois(300),
        center in coordinate(),
        radius in radius(),
        filter in filter(),
    ) {
        let center = LatLon::new(center.0, center.1).expect("valid");
        let radius_m = radius.unwrap_or(MAX_RADIUS_M);
        let index = PoiIndex::from_pois(all.clone()).expect("few categories");
        let mut expected: Vec<String> = all
            .iter()
            .filter(|p| passes(&filter, p) && haversine_m(center, p.position) <= radius_m)
            .map(|p| p.id.clone())
            .collect();
        expected.sort();
        let area = Area::circle(center, radius_m).expect("valid");
        let page = index.within_area(&AreaQuery { area, limit: 1000, filter, after: None });
        let got: Vec<String> = page.items.iter().map(|p| p.id().to_string()).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn incremental_writes_answer_like_a_fresh_build(
        first in pois(150),
        moves in prop::collection::vec((0usize..150, coordinate(), 0usize..4, prop::option::of(0.0..=5.0f64)), 0..100),
        deletes in prop::collection::vec(0usize..150, 0..50),
        rebuild_floor in 0usize..80,
        center in coordinate(),
        radius in radius(),
        filter in filter(),
        corners in (coordinate(), coordinate()),
    ) {
        // Writes land in the delta and kill packed entries; a low floor makes some of them
        // rebuild the packed tree midway, so every mix of the two trees is queried.
        let mut index = PoiIndex::from_pois(first.clone()).expect("few categories");
        index.set_rebuild_floor(rebuild_floor);
        let mut reference: BTreeMap<String, Poi> = first.into_iter().map(|p| (p.id.clone(), p)).collect();
        for (i, c, cat, rating) in moves {
            let p = poi_at(i, c, cat, rating);
            index.upsert(p.clone()).expect("few categories");
            index.rebuild_if_due();
            reference.insert(p.id.clone(), p);
        }
        for i in deletes {
            let id = format!("p{i}");
            prop_assert_eq!(index.remove(&id), reference.remove(&id).is_some());
            index.rebuild_if_due();
        }
        prop_assert_eq!(index.len(), reference.len());
        let all: Vec<Poi> = reference.into_values().collect();
        let center = LatLon::new(center.0, center.1).expect("valid");
        let query = NearbyQuery { center, radius_m: radius, limit: 25, filter: PoiFilter::default(), after: None };
        let got: Vec<(String, f64)> = index.nearby(&query).items.iter().map(|h| (h.poi.id().to_string(), h.distance_m)).collect();
        let want: Vec<(String, f64)> = oracle_nearby(&all, center, radius, &PoiFilter::default()).into_iter().take(25).collect();
        prop_assert_eq!(got, want);
        // And the same again filtered, which prunes packed nodes by their category masks.
        let query = NearbyQuery { filter: filter.clone(), ..query };
        let got: Vec<String> = index.nearby(&query).items.into_iter().map(|h| h.poi.id().to_string()).collect();
        let want: Vec<String> = oracle_nearby(&all, center, radius, &filter).into_iter().take(25).map(|h| h.0).collect();
        prop_assert_eq!(got, want);
        // And a box, which walks both trees too.
        let ((lat_a, lon_a), (lat_b, lon_b)) = corners;
        let bbox = BBox::new(lon_a, lat_a.min(lat_b), lon_b, lat_a.max(lat_b)).expect("valid");
        let page = index.within(&WithinQuery { bbox, limit: 1000, filter: filter.clone(), after: None });
        let got: Vec<String> = page.items.iter().map(|p| p.id().to_string()).collect();
        prop_assert_eq!(got, oracle_within(&all, &bbox, &filter));
    }

    #[test]
    fn upsert_batches_equal_their_last_write_per_id(
        first in pois(100),
        batch in pois(100),
    ) {
        // Batch ids overlap the first set's (both count from p0), so some are replacements.
        let index = PoiIndex::from_pois(first.clone()).expect("few categories").with_upserts(batch.clone()).expect("few categories");
        let mut combined = first;
        combined.extend(batch);
        let mut want = latest(&combined);
        want.sort_by(|a, b| a.id.cmp(&b.id));
        let mut got: Vec<Poi> = index.iter().collect();
        got.sort_by(|a, b| a.id.cmp(&b.id));
        prop_assert_eq!(got, want);
    }
}

#[test]
fn nearby_crosses_the_antimeridian() {
    let west = poi_at(1, (0.0, -179.999), 0, None);
    let far = poi_at(2, (0.0, 179.0), 0, None);
    let index = PoiIndex::from_pois([west, far]).expect("few categories");
    let center = LatLon::new(0.0, 179.999).expect("valid");
    let query = NearbyQuery {
        center,
        radius_m: Some(1_000.0),
        limit: 10,
        filter: PoiFilter::default(),
        after: None,
    };
    let page = index.nearby(&query);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].poi.id(), "p1");
    assert!(
        (page.items[0].distance_m - 222.39).abs() < 0.01,
        "{}",
        page.items[0].distance_m
    );
}

#[test]
fn every_longitude_at_the_pole_is_the_same_place() {
    let pois = (0..8).map(|i| poi_at(i, (90.0, -180.0 + 45.0 * i as f64), 0, None));
    let index = PoiIndex::from_pois(pois).expect("few categories");
    let center = LatLon::new(90.0, 12.3).expect("valid");
    let query = NearbyQuery {
        center,
        radius_m: Some(0.0),
        limit: 100,
        filter: PoiFilter::default(),
        after: None,
    };
    let page = index.nearby(&query);
    assert_eq!(
        page.items.len(),
        8,
        "a zero radius at the pole finds every POI on it"
    );
    let ids: Vec<&str> = page.items.iter().map(|h| h.poi.id()).collect();
    assert_eq!(
        ids,
        ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"],
        "ties are broken by id"
    );
}

#[test]
fn a_minimum_rating_between_two_f32_values_is_compared_exactly() {
    // The packed tree keeps ratings as f32 rounded down; 3.7 is not an f32, so a minimum of
    // exactly 3.7 (or the next f64 above it) must be settled by the exact rating.
    let rated = |id: &str, rating: f64| {
        Poi::new(
            id.into(),
            1.0,
            1.0,
            String::new(),
            "cafe".into(),
            BTreeMap::new(),
            Some(rating),
        )
        .expect("valid")
    };
    let index = PoiIndex::from_pois([rated("a", 3.7), rated("b", 3.7f64.next_up())])
        .expect("few categories");
    let found = |min: f64| -> Vec<String> {
        let filter = PoiFilter {
            categories: vec![],
            min_rating: Some(min),
        };
        let query = NearbyQuery {
            center: LatLon::new(1.0, 1.0).expect("valid"),
            radius_m: None,
            limit: 10,
            filter: filter.clone(),
            after: None,
        };
        let mut near: Vec<String> = index
            .nearby(&query)
            .items
            .iter()
            .map(|h| h.poi.id().to_string())
            .collect();
        near.sort();
        let bbox = BBox::new(0.0, 0.0, 2.0, 2.0).expect("valid");
        let within: Vec<String> = index
            .within(&WithinQuery {
                bbox,
                limit: 10,
                filter,
                after: None,
            })
            .items
            .iter()
            .map(|p| p.id().to_string())
            .collect();
        assert_eq!(near, within);
        near
    };
    assert_eq!(found(3.7), ["a", "b"]);
    assert_eq!(found(3.7f64.next_up()), ["b"]);
    assert_eq!(found(3.7f64.next_up().next_up()), Vec::<String>::new());
    assert_eq!(found(3.7f64.next_down()), ["a", "b"]);
}
