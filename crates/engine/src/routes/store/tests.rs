//! The route store against a model: a map of (trip, `ts`) to the first point stored.
//! Random late, shuffled and duplicated batches over a few trips, erasures, cuts to a window
//! (written back in steps), and reads of random windows and pages must give the model's
//! sorted, deduplicated routes, with figures that add them up; a store reopened after its
//! changes were made durable holds the same.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::routes::codec::{from_units, to_units};
use crate::routes::places::Places;
use crate::routes::shape::Figures;
use crate::routes::{RoutePoint, RouteStore, TripFigures};

const TRIPS: [&str; 3] = ["a", "b", "trip-with-a-longer-id"];

#[derive(Debug, Clone)]
enum Step {
    /// A batch: (trip index, ts, lat, lon), in the order sent.
    Batch(Vec<(usize, i64, f64, f64)>),
    /// A batch later than every point before it (its `ts` moved past them): the route's
    /// usual growth at its end, appended to its last chunk's bytes.
    Onwards(Vec<(usize, i64, f64, f64)>),
    /// Erase a trip.
    Erase(usize),
    /// Cut a trip to a window (a narrowed trip), written back `step` points at a time.
    Window {
        trip: usize,
        from: i64,
        to: i64,
        step: usize,
    },
    /// Read a window of a trip, in pages.
    Read {
        trip: usize,
        from: i64,
        to: i64,
        page: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let report = (
        0..TRIPS.len(),
        0i64..2_000,
        -89.0f64..89.0,
        -179.0f64..179.0,
    );
    prop_oneof![
        6 => proptest::collection::vec(report.clone(), 1..600).prop_map(Step::Batch),
        4 => proptest::collection::vec(report, 1..600).prop_map(Step::Onwards),
        1 => (0..TRIPS.len()).prop_map(Step::Erase),
        2 => (0..TRIPS.len(), 0i64..2_000, 0i64..2_000, prop_oneof![1..40usize, Just(usize::MAX)])
            .prop_map(|(trip, a, b, step)| Step::Window { trip, from: a.min(b), to: a.max(b), step }),
        2 => (0..TRIPS.len(), 0i64..2_000, 0i64..2_000, 1usize..700)
            .prop_map(|(trip, a, b, page)| Step::Read { trip, from: a.min(b), to: a.max(b), page }),
    ]
}

/// A point as the store keeps it (coordinates to 10⁻⁷ degree).
fn stored(ts: i64, lat: f64, lon: f64) -> RoutePoint {
    RoutePoint {
        ts,
        lat: from_units(to_units(lat)),
        lon: from_units(to_units(lon)),
    }
}

fn read_all(store: &RouteStore, trip: &str, from: i64, to: i64, page: usize) -> Vec<RoutePoint> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (points, more) = store.read(trip, from, to, after, page).expect("reads");
        assert!(points.len() <= page);
        after = points.last().map(|p| p.ts).or(after);
        out.extend(points);
        if !more {
            return out;
        }
    }
}

/// The figures kept as points arrived equal those worked out from the whole route.
fn figures_match(kept: Option<TripFigures>, route: &[RoutePoint]) -> Result<(), TestCaseError> {
    let Some(kept) = kept else {
        prop_assert!(route.is_empty(), "no figures for {} points", route.len());
        return Ok(());
    };
    let whole = Figures::of(route);
    prop_assert_eq!(kept.points, whole.points);
    prop_assert!(
        (kept.distance_m - whole.distance_m).abs() <= 1e-6 * whole.distance_m.max(1.0),
        "distance {} kept, {} whole",
        kept.distance_m,
        whole.distance_m
    );
    prop_assert_eq!(kept.first, whole.first);
    prop_assert_eq!(kept.last, whole.last);
    prop_assert_eq!(kept.duration_s(), whole.duration_s);
    let mut places = Places::default();
    for p in route {
        places.add(*p);
    }
    prop_assert_eq!(kept.countries(), places.countries().to_vec());
    prop_assert_eq!(kept.cells, places.cell_count() as u64);
    prop_assert!((kept.explored_km2 - places.explored_km2()).abs() < 1e-6);
    Ok(())
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(48))]

    #[test]
    fn routes_equal_the_model_whatever_the_order_of_the_batches(
        steps in proptest::collection::vec(step(), 1..12),
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("routes.redb");
        let store = RouteStore::open(&path).expect("opens");
        let mut model: BTreeMap<(usize, i64), RoutePoint> = BTreeMap::new();
        let mut seq = 0u64;
        for step in &steps {
            seq += 1;
            let onwards;
            let step = match step {
                Step::Onwards(reports) => {
                    let past = 2_000 * i64::try_from(seq).expect("few steps");
                    onwards = Step::Batch(
                        reports
                            .iter()
                            .map(|&(t, ts, lat, lon)| (t, ts + past, lat, lon))
                            .collect(),
                    );
                    &onwards
                }
                other => other,
            };
            match step {
                Step::Onwards(_) => unreachable!("made a batch above"),
                Step::Batch(reports) => {
                    let points: Vec<(&str, RoutePoint)> = reports
                        .iter()
                        .map(|&(t, ts, lat, lon)| (TRIPS[t], RoutePoint { ts, lat, lon }))
                        .collect();
                    let mut added = 0;
                    for &(t, ts, lat, lon) in reports {
                        if let std::collections::btree_map::Entry::Vacant(e) = model.entry((t, ts)) {
                            e.insert(stored(ts, lat, lon));
                            added += 1;
                        }
                    }
                    let counts = store.append(&points).expect("appends");
                    prop_assert_eq!(counts.added, added);
                    prop_assert_eq!(counts.added + counts.already, reports.len() as u64);
                }
                Step::Erase(t) => {
                    let held = model.range((*t, i64::MIN)..=(*t, i64::MAX)).count() as u64;
                    model.retain(|(trip, _), _| trip != t);
                    prop_assert_eq!(store.erase(TRIPS[*t]).expect("erases"), held);
                    prop_assert_eq!(store.figures(TRIPS[*t]).expect("reads"), None);
                }
                Step::Window { trip, from, to, step } => {
                    model.retain(|(t, ts), _| t != trip || (*from..=*to).contains(ts));
                    if let Some(mut rewrite) = store.rewrite(TRIPS[*trip], *from, *to).expect("reads") {
                        let steps = rewrite.kept().div_ceil((*step).max(1)).max(1);
                        let mut taken = 1;
                        while !rewrite.step(&store, *step).expect("writes") {
                            taken += 1;
                        }
                        prop_assert_eq!(taken, steps);
                    }
                }
                Step::Read { trip, from, to, page } => {
                    let want: Vec<RoutePoint> =
                        model.range((*trip, *from)..=(*trip, *to)).map(|(_, p)| *p).collect();
                    prop_assert_eq!(read_all(&store, TRIPS[*trip], *from, *to, *page), want);
                }
            }
            for (t, trip) in TRIPS.iter().enumerate() {
                let route: Vec<RoutePoint> =
                    model.range((t, i64::MIN)..=(t, i64::MAX)).map(|(_, p)| *p).collect();
                figures_match(store.figures(trip).expect("reads"), &route)?;
            }
        }
        let applied = seq;
        store.make_durable(applied).expect("syncs");
        let mut store = store;
        store.compact().expect("compacts");
        drop(store);
        let reopened = RouteStore::open(&path).expect("reopens");
        prop_assert_eq!(reopened.applied_seq().expect("reads"), applied);
        for (t, trip) in TRIPS.iter().enumerate() {
            let want: Vec<RoutePoint> =
                model.range((t, i64::MIN)..=(t, i64::MAX)).map(|(_, p)| *p).collect();
            prop_assert_eq!(reopened.count(trip).expect("counts"), want.len() as u64);
            prop_assert_eq!(read_all(&reopened, trip, i64::MIN, i64::MAX, 10_000), want);
        }
    }
}

#[test]
fn an_erased_trip_leaves_no_point_and_others_keep_theirs() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = RouteStore::open(&dir.path().join("routes.redb")).expect("opens");
    let points: Vec<(&str, RoutePoint)> = (0..1_000)
        .flat_map(|i| {
            let p = RoutePoint {
                ts: i,
                lat: 60.0,
                lon: 24.0 + i as f64 * 1e-5,
            };
            [("gone", p), ("kept", p)]
        })
        .collect();
    store.append(&points).expect("appends");
    assert_eq!(store.erase("gone").expect("erases"), 1_000);
    assert_eq!(store.count("gone").expect("counts"), 0);
    assert_eq!(
        store
            .read("gone", i64::MIN, i64::MAX, None, 10)
            .expect("reads"),
        (vec![], false)
    );
    assert_eq!(store.count("kept").expect("counts"), 1_000);
}

#[test]
fn a_fresh_piece_fills_its_pages_and_a_compaction_gives_freed_space_back() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut store = RouteStore::open(&dir.path().join("routes.redb")).expect("opens");
    let ids: Vec<String> = (0..20_000).map(|i| format!("bench:trip:{i}")).collect();
    let points: Vec<(&str, RoutePoint)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let p = stored(1_700_000_000_000 + i as i64, 10.0 + i as f64 * 1e-4, 20.0);
            (id.as_str(), p)
        })
        .collect();
    store.add_fresh(&points).expect("writes a piece");
    let space = store.space().expect("reads the space");
    let (_, fresh) = space
        .tables
        .iter()
        .find(|(name, _)| *name == "fresh")
        .expect("a fresh table");
    // Blobs cut to fit a page: at most a tenth of the pages' room unused (blobs just over
    // a page left about half of it).
    assert!(
        fresh.fragmented * 10 <= fresh.stored + fresh.fragmented,
        "fresh pieces: {fresh:?}"
    );
    let settling = store.start_settling().expect("reads");
    let mut settling = settling.expect("a piece to settle");
    while !store.settle_some(&mut settling, 4_096).expect("settles") {}
    let before = store.file_bytes().expect("a file");
    store.compact().expect("compacts");
    let after = store.file_bytes().expect("a file");
    assert!(after < before, "compacted from {before} to {after} bytes");
    for (trip, p) in points.iter().step_by(997) {
        assert_eq!(
            store
                .read(trip, i64::MIN, i64::MAX, None, 10)
                .expect("reads"),
            (vec![*p], false)
        );
    }
}

/// What happens to the store with fresh pieces, in the engine's order of things.
#[derive(Debug, Clone)]
enum FreshStep {
    /// Points written as a fresh piece: (trip index, ts, lat, lon), in arrival order.
    Piece(Vec<(usize, i64, f64, f64)>),
    /// A reader settles a trip, with points that arrived after every piece.
    SettleTrip(usize, Vec<(i64, f64, f64)>),
    /// The route thread settles every piece so far, parts of this many trips a piece, with
    /// a piece written after the first part.
    Settle(usize, Vec<(usize, i64, f64, f64)>),
    /// A trip erased.
    Erase(usize),
    /// A trip read (settled first) against the model.
    Check(usize),
}

const MANY_TRIPS: usize = 24;

/// Half the trips with ids past 32 bytes that agree in their first 32, so that merging the
/// pieces orders them by the whole id, not by the numbers made of its start alone.
fn fresh_trip(t: usize) -> String {
    if t.is_multiple_of(2) {
        format!("trip-{t}")
    } else {
        format!("trip-with-an-id-longer-than-thirty-two-bytes-{t}")
    }
}

fn fresh_step() -> impl Strategy<Value = FreshStep> {
    let report = (0..MANY_TRIPS, 0i64..300, -89.0f64..89.0, -179.0f64..179.0);
    let points = proptest::collection::vec(report, 1..400);
    prop_oneof![
        5 => points.clone().prop_map(FreshStep::Piece),
        2 => (0..MANY_TRIPS, proptest::collection::vec((0i64..300, -89.0f64..89.0, -179.0f64..179.0), 0..20))
            .prop_map(|(t, p)| FreshStep::SettleTrip(t, p)),
        2 => (1usize..5, points).prop_map(|(part, p)| FreshStep::Settle(part, p)),
        1 => (0..MANY_TRIPS).prop_map(FreshStep::Erase),
        2 => (0..MANY_TRIPS).prop_map(FreshStep::Check),
    ]
}

/// Adds reports to the model, the first of each (trip, ts) winning.
fn arrive(model: &mut BTreeMap<(usize, i64), RoutePoint>, reports: &[(usize, i64, f64, f64)]) {
    for &(t, ts, lat, lon) in reports {
        model.entry((t, ts)).or_insert_with(|| stored(ts, lat, lon));
    }
}

fn route_of(model: &BTreeMap<(usize, i64), RoutePoint>, t: usize) -> Vec<RoutePoint> {
    model
        .range((t, i64::MIN)..=(t, i64::MAX))
        .map(|(_, p)| *p)
        .collect()
}

fn add_piece(store: &RouteStore, reports: &[(usize, i64, f64, f64)]) {
    let names: Vec<String> = reports.iter().map(|r| fresh_trip(r.0)).collect();
    let points: Vec<(&str, RoutePoint)> = reports
        .iter()
        .zip(&names)
        .map(|(&(_, ts, lat, lon), name)| (name.as_str(), RoutePoint { ts, lat, lon }))
        .collect();
    store.add_fresh(&points).expect("writes a piece");
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(48))]

    /// Fresh pieces, settled by readers a trip at a time and by the route thread in parts,
    /// with erasures between: every trip's route and figures equal the model's (the first
    /// point to arrive at each `ts` wins; an erased trip's points never come back), and
    /// settling everything leaves no piece.
    #[test]
    fn fresh_pieces_settle_to_the_model(steps in proptest::collection::vec(fresh_step(), 1..14)) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("routes.redb");
        let store = RouteStore::open(&path).expect("opens");
        let mut model: BTreeMap<(usize, i64), RoutePoint> = BTreeMap::new();
        for step in &steps {
            match step {
                FreshStep::Piece(reports) => {
                    add_piece(&store, reports);
                    arrive(&mut model, reports);
                }
                FreshStep::SettleTrip(t, newer) => {
                    let points: Vec<RoutePoint> =
                        newer.iter().map(|&(ts, lat, lon)| RoutePoint { ts, lat, lon }).collect();
                    store.settle_trip(&fresh_trip(*t), &points).expect("settles");
                    let reports: Vec<_> = newer.iter().map(|&(ts, lat, lon)| (*t, ts, lat, lon)).collect();
                    arrive(&mut model, &reports);
                }
                FreshStep::Settle(part, meanwhile) => {
                    if let Some(mut settling) = store.start_settling().expect("reads") {
                        let mut first = true;
                        while !store.settle_some(&mut settling, *part).expect("settles") {
                            if first {
                                add_piece(&store, meanwhile);
                                arrive(&mut model, meanwhile);
                                first = false;
                            }
                        }
                    }
                }
                FreshStep::Erase(t) => {
                    store.erase(&fresh_trip(*t)).expect("erases");
                    model.retain(|(trip, _), _| trip != t);
                }
                FreshStep::Check(t) => {
                    let trip = fresh_trip(*t);
                    store.settle_trip(&trip, &[]).expect("settles");
                    let route = route_of(&model, *t);
                    prop_assert_eq!(&read_all(&store, &trip, i64::MIN, i64::MAX, 97), &route);
                    figures_match(store.figures(&trip).expect("reads"), &route)?;
                }
            }
        }
        while let Some(mut settling) = store.start_settling().expect("reads") {
            while !store.settle_some(&mut settling, 3).expect("settles") {}
        }
        prop_assert_eq!(store.fresh_pieces().expect("reads"), 0);
        for t in 0..MANY_TRIPS {
            let trip = fresh_trip(t);
            let route = route_of(&model, t);
            prop_assert_eq!(&read_all(&store, &trip, i64::MIN, i64::MAX, 10_000), &route);
            figures_match(store.figures(&trip).expect("reads"), &route)?;
        }
    }
}

#[test]
fn a_store_whose_file_outgrows_its_cache_reads_back_every_route() {
    // A cache of 1 MiB under a file of many times that: pages are evicted and read again
    // from the file while pieces are written and settled, and when routes are read.
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("routes.redb");
    let store = RouteStore::open_with_cache(&path, 1 << 20).expect("opens");
    let (trips, rounds, per_round) = (500usize, 4i64, 100i64);
    let point = |t: usize, ts: i64| {
        stored(
            ts,
            -60.0 + t as f64 * 0.2 + ts as f64 * 1e-4,
            170.0 + ts as f64 * 3e-4,
        )
    };
    let names: Vec<String> = (0..trips).map(|t| format!("trip-{t:04}")).collect();
    for round in 0..rounds {
        let points: Vec<(&str, RoutePoint)> = (0..per_round)
            .flat_map(|k| {
                let ts = round * per_round + k;
                names
                    .iter()
                    .enumerate()
                    .map(move |(t, name)| (name.as_str(), point(t, ts)))
            })
            .collect();
        store.add_fresh(&points).expect("writes a piece");
        let mut settling = store
            .start_settling()
            .expect("starts")
            .expect("a piece to settle");
        while !store.settle_some(&mut settling, 64).expect("settles") {}
    }
    assert!(
        store.file_bytes().expect("a file") > 4 << 20,
        "the file outgrows the cache"
    );
    for (t, name) in names.iter().enumerate() {
        let want: Vec<RoutePoint> = (0..rounds * per_round).map(|ts| point(t, ts)).collect();
        assert_eq!(
            read_all(&store, name, i64::MIN, i64::MAX, 10_000),
            want,
            "{name}"
        );
    }
}
