//! Trips through the engine: who sees a traveller on a trip (a model proptest over lookups,
//! nearby and within), fences told when a trip ends, routes built from late and shuffled
//! batches and erased with their trip or traveller, and routes, followers and links kept
//! across a restart with only the log's tail replayed into the route store.

use std::sync::Arc;

use proptest::prelude::*;

use super::fence_model_tests::{OWNER, engine};
use super::{Engine, EngineConfig, EngineError, LiveConfig};
use crate::clock::{Clock, ManualClock};
use crate::events::{Cause, EventKind, Next};
use crate::fences::{Fence, FenceKind};
use crate::geometry::LatLon;
use crate::geometry::area::Area;
use crate::persist::wal::WalOptions;
use crate::pois::CursorKey;
use crate::routes::RoutePoint;
use crate::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};
use crate::trips::Trip;

const START: i64 = 1_000_000;
const HERE: LatLon = LatLon {
    lat: 10.0,
    lon: 20.0,
};

fn trip(id: &str, who: &str, start: i64, end: Option<i64>) -> Trip {
    Trip::new(id.into(), who.into(), "Away".into(), start, end).expect("valid")
}

fn report(engine: &Engine, who: &str, ts: i64, at: LatLon) {
    let u = PositionUpdate::new(who.into(), at.lat, at.lon, ts, None, None).expect("valid");
    let _ = engine.update_position(u).expect("applied").wait();
}

/// `who`'s report from [`HERE`] at `ts`.
fn here_at(who: &str, ts: i64) -> PositionUpdate {
    PositionUpdate::new(who.into(), HERE.lat, HERE.lon, ts, None, None).expect("valid")
}

/// `who`'s reports from [`HERE`] at `times`, in one batch, waited for.
fn batch_here(engine: &Engine, who: &str, times: impl IntoIterator<Item = i64>) {
    let updates = times.into_iter().map(|ts| here_at(who, ts)).collect();
    let _ = engine.update_positions(updates).expect("taken").wait();
}

/// The trips' clock tick, waited for as the server does.
fn tick(engine: &Engine) {
    if let Some(written) = engine.tick_trips().expect("ticks") {
        written.wait().expect("logged");
    }
}

/// Trip `t`'s route, every point (the tests' routes are shorter than a page).
fn whole_route(engine: &Engine) -> Vec<RoutePoint> {
    engine
        .route("t", i64::MIN, i64::MAX, None, 10_000)
        .expect("reads")
        .0
}

/// The times of trip `t`'s points, in order.
fn route_times(engine: &Engine) -> Vec<i64> {
    whole_route(engine).iter().map(|p| p.ts).collect()
}

fn sees(engine: &Engine, viewer: &str) -> bool {
    engine.traveller("ann", Some(viewer)).is_some()
}

#[test]
fn a_follower_sees_a_private_traveller_only_while_its_trip_runs_and_only_from_its_start() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    report(&engine, "ann", START - 500, HERE);
    let _ = engine.put_trip(trip("t", "ann", START, None)).expect("put");
    let _ = engine.add_follower("t", "mum").expect("added");
    assert!(
        !sees(&engine, "mum"),
        "the position before the trip stays private"
    );
    report(&engine, "ann", START + 10, HERE);
    assert!(sees(&engine, "mum"));
    assert!(!sees(&engine, "eve"));
    assert!(engine.traveller("ann", None).is_none());
    let trail = engine.trail("ann", Some("mum"), i64::MIN).expect("visible");
    assert!(
        trail.iter().all(|p| p.ts >= START),
        "the trail before the trip is not the follower's: {trail:?}"
    );
    let near = engine.nearby_travellers(HERE, 1_000.0, 10, Some("mum"));
    assert_eq!(near.len(), 1);
    // Ended now: nothing more.
    clock.advance(1_000);
    let now = clock.now_ms();
    let _ = engine
        .put_trip(trip("t", "ann", START, Some(now)))
        .expect("ended");
    assert!(!sees(&engine, "mum"));
    assert!(
        engine
            .nearby_travellers(HERE, 1_000.0, 10, Some("mum"))
            .is_empty()
    );
}

#[test]
fn a_fence_that_saw_a_traveller_through_its_trip_is_told_it_left_for_sharing() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    let area = Area::circle(HERE, 1_000.0).expect("a circle");
    let fence = Fence::new(
        "home".into(),
        OWNER.into(),
        Some("mum".into()),
        FenceKind::Static(area),
    )
    .expect("valid");
    let _ = engine.put_fence(fence, true).expect("put");
    let mut told = engine
        .events()
        .subscribe(OWNER, vec![Arc::from("home")], &[], None, 0)
        .expect("room");
    let _ = engine
        .put_trip(trip("t", "ann", START, Some(START + 5_000)))
        .expect("put");
    let _ = engine.add_follower("t", "mum").expect("added");
    report(&engine, "ann", START + 1, HERE);
    clock.advance(6_000);
    tick(&engine);
    let mut kinds = Vec::new();
    while let Some(Next::Event(e)) = told.try_next() {
        kinds.push((e.event.kind, e.event.cause.expect("a cause")));
    }
    assert_eq!(
        kinds,
        [
            (EventKind::Enter, Cause::Moved),
            (EventKind::Exit, Cause::Sharing)
        ]
    );
    assert!(!sees(&engine, "mum"));
}

#[test]
fn a_route_holds_each_position_of_its_window_once_in_order_and_goes_with_its_trip() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    let _ = engine
        .put_trip(trip("t", "ann", START, Some(START + 100)))
        .expect("put");
    let _ = engine
        .put_trip(trip("other", "bob", START, None))
        .expect("put");
    let at = |i: i64| LatLon {
        lat: 10.0 + i as f64 * 1e-3,
        lon: 20.0,
    };
    // Shuffled, repeated and late, with some outside the window.
    let batches: [&[i64]; 3] = [&[50, 10, 120, 30], &[20, 10, -5, 100], &[0, 40, 50]];
    for batch in batches {
        let updates = batch
            .iter()
            .map(|&i| {
                PositionUpdate::new("ann".into(), at(i).lat, at(i).lon, START + i, None, None)
                    .expect("valid")
            })
            .collect();
        let _ = engine.update_positions(updates).expect("applied").wait();
    }
    let (points, more) = engine
        .route("t", i64::MIN, i64::MAX, None, 100)
        .expect("reads");
    assert!(!more);
    let times: Vec<i64> = points.iter().map(|p| p.ts - START).collect();
    assert_eq!(times, [0, 10, 20, 30, 40, 50, 100]);
    let figures = engine.trip_figures("t").expect("reads");
    assert_eq!(figures.points, 7);
    let expected = crate::routes::shape::Figures::of(&points);
    assert!((figures.distance_m - expected.distance_m).abs() < 1e-6);
    assert_eq!(
        engine
            .route("other", i64::MIN, i64::MAX, None, 10)
            .expect("reads")
            .0,
        Vec::<RoutePoint>::new()
    );
    // Narrowing the trip drops what falls outside.
    let _ = engine
        .put_trip(trip("t", "ann", START + 10, Some(START + 40)))
        .expect("narrowed");
    let (points, _) = engine
        .route("t", i64::MIN, i64::MAX, None, 100)
        .expect("reads");
    assert_eq!(points.len(), 4);
    assert_eq!(engine.trip_figures("t").expect("reads").points, 4);
    // Ended later than its last point: nothing to drop (the figures tell, with no read).
    let _ = engine
        .put_trip(trip("t", "ann", START + 10, Some(START + 45)))
        .expect("ended");
    assert_eq!(engine.trip_figures("t").expect("reads").points, 4);
    // Ended before its last point: the end alone is trimmed.
    let _ = engine
        .put_trip(trip("t", "ann", START + 10, Some(START + 35)))
        .expect("ended");
    let (points, _) = engine
        .route("t", i64::MIN, i64::MAX, None, 100)
        .expect("reads");
    let times: Vec<i64> = points.iter().map(|p| p.ts - START).collect();
    assert_eq!(times, [10, 20, 30]);
    assert_eq!(engine.trip_figures("t").expect("reads").points, 3);
    let _ = engine
        .put_trip(trip("t", "ann", START + 10, Some(START + 40)))
        .expect("widened again");
    // Deleting the trip erases its points; deleting the traveller, its trips.
    let _ = engine.delete_trip("t").expect("deleted");
    assert!(engine.trip("t").is_none());
    assert_eq!(engine.trip_figures("t").expect("reads").points, 0);
    assert!(
        engine
            .route("t", i64::MIN, i64::MAX, None, 10)
            .expect("reads")
            .0
            .is_empty()
    );
    report(&engine, "bob", START + 5, HERE);
    assert_eq!(engine.trip_figures("other").expect("reads").points, 1);
    let removed = engine.delete_traveller("bob").expect("deleted").wait();
    assert!(removed.is_ok());
    assert!(engine.trip("other").is_none());
    assert_eq!(engine.trip_figures("other").expect("reads").points, 0);
}

/// An engine with small trails and an hour's time-to-live, on `clock`.
pub(super) fn persistent(clock: Arc<ManualClock>) -> Engine {
    Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock,
        travellers: TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    })
}

#[test]
fn routes_followers_and_links_survive_a_restart_replaying_only_the_tail() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(START));
    let engine = persistent(clock.clone());
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("opens");
    let _ = engine.put_trip(trip("t", "ann", START, None)).expect("put");
    let _ = engine.add_follower("t", "mum").expect("added");
    let (_, _, token) = engine
        .create_link("t", START + 3_600_000, None, None)
        .expect("link");
    for i in 0..300 {
        report(&engine, "ann", START + i, HERE);
    }
    let snapshot = engine.snapshot().expect("snapshot");
    for i in 300..600 {
        report(&engine, "ann", START + i, HERE);
    }
    let before = whole_route(&engine);
    let figures = engine.trip_figures("t").expect("reads");
    drop(engine);

    let engine = persistent(clock.clone());
    let report = engine
        .recover(dir.path(), WalOptions::default())
        .expect("recovers");
    assert_eq!(report.replayed, 300, "the tail after the snapshot");
    let after = whole_route(&engine);
    assert_eq!(after, before);
    assert_eq!(engine.trip_figures("t").expect("reads"), figures);
    assert!(
        sees(&engine, "mum"),
        "the follower still sees the traveller"
    );
    assert!(engine.open_link(&token).is_some(), "the link still opens");
    assert!(snapshot.seq > 0);
}

/// A trip ended (its window narrowed), opened again and reported to, all held durably by
/// the route store, and then a crash before the snapshot that marked it: recovery replays
/// those changes for the rest of the state, and the store, which has them, keeps the point
/// reported after the narrowing (a narrowing replayed into the store cut it again, and its
/// report, skipped as stored, never came back).
#[test]
fn a_narrowing_the_store_holds_is_not_replayed_into_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(START));
    let engine = persistent(clock.clone());
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("opens");
    let _ = engine.put_trip(trip("t", "ann", START, None)).expect("put");
    report(&engine, "ann", START + 5, HERE);
    let _ = engine
        .put_trip(trip("t", "ann", START, Some(START + 10)))
        .expect("ended");
    let _ = engine
        .put_trip(trip("t", "ann", START, None))
        .expect("opened again");
    report(&engine, "ann", START + 20, HERE);
    assert_eq!(
        whole_route(&engine)
            .iter()
            .map(|p| p.ts)
            .collect::<Vec<_>>(),
        [START + 5, START + 20]
    );
    // What a snapshot does first, and then no snapshot: the store holds every change.
    engine.routes.make_durable(u64::MAX).expect("durable");
    drop(engine);

    let engine = persistent(clock.clone());
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("recovers");
    assert_eq!(
        whole_route(&engine)
            .iter()
            .map(|p| p.ts)
            .collect::<Vec<_>>(),
        [START + 5, START + 20]
    );
}

/// Reads of one trip while another's points arrive: each read takes its own trip's points
/// out of the buffer the writers add to. Every point written is in its route once, and
/// none is left counted as waiting once the trips are read. (A read that took the buffer
/// out to scan it off the writers' lock, and lost what arrived meanwhile, fails here.)
#[test]
fn reads_of_one_trip_while_another_is_written_lose_no_point_of_either() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    let _ = engine.put_trip(trip("a", "ann", START, None)).expect("put");
    let _ = engine.put_trip(trip("b", "bob", START, None)).expect("put");
    report(&engine, "bob", START + 1, HERE);
    // A third trip's 100,000 points waiting, so that each read's scan of the buffer is
    // long enough for ann's batches to come while it runs.
    let _ = engine.put_trip(trip("c", "cat", START, None)).expect("put");
    for chunk in 0..20i64 {
        batch_here(
            &engine,
            "cat",
            (0..5_000).map(|k| START + 10 + chunk * 5_000 + k),
        );
    }
    let batches = 400i64;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for batch in 0..batches {
                // Five of ann's points a batch, one of them late.
                let times = [3, 1, 2, 5, 4].map(|k| START + 10 + batch * 10 + k);
                batch_here(&engine, "ann", times);
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        scope.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads < 10 {
                let (points, _) = engine
                    .route("b", i64::MIN, i64::MAX, None, 10)
                    .expect("reads");
                assert_eq!(points.len(), 1);
                reads += 1;
            }
        });
    });
    let mut expected: Vec<i64> = (0..batches)
        .flat_map(|batch| (1..=5).map(move |k| START + 10 + batch * 10 + k))
        .collect();
    expected.sort_unstable();
    let (route, _) = engine
        .route("a", i64::MIN, i64::MAX, None, 10_000)
        .expect("reads");
    assert_eq!(route.iter().map(|p| p.ts).collect::<Vec<_>>(), expected);
    let (cats, _) = engine
        .route("c", i64::MIN, i64::MAX, None, 200_000)
        .expect("reads");
    assert_eq!(cats.len(), 100_000);
    assert_eq!(
        engine.route_points_pending(),
        0,
        "nothing left counted as waiting"
    );
}

/// A route thread that could not be started (no threads left for a moment) is started
/// again by a later write, not given up on: without it nothing would ever settle the
/// store's pieces, and positions on trips would be refused for the life of the process.
#[test]
fn a_route_thread_that_failed_to_start_is_started_by_a_later_write() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    let _ = engine.put_trip(trip("t", "ann", START, None)).expect("put");
    engine
        .routes
        .fail_starts
        .store(1, std::sync::atomic::Ordering::SeqCst);
    report(&engine, "ann", START + 10, HERE);
    assert!(!engine.routes.has_thread(), "the first start failed");
    report(&engine, "ann", START + 20, HERE);
    assert!(
        !engine.routes.has_thread(),
        "not tried again at once: a write does not pay a failing start each time"
    );
    std::thread::sleep(super::routes::RESPAWN_AFTER + std::time::Duration::from_millis(50));
    report(&engine, "ann", START + 30, HERE);
    assert!(engine.routes.has_thread(), "started again by a later write");
    assert_eq!(
        route_times(&engine),
        vec![START + 10, START + 20, START + 30]
    );
}

#[test]
fn positions_on_trips_are_refused_unlogged_while_the_route_store_is_behind_and_taken_after() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(START));
    let engine = persistent(clock.clone());
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("opens");
    let _ = engine.put_trip(trip("t", "ann", START, None)).expect("put");
    drop(engine);
    // A backlog left by a run the route thread could not keep up with: one piece past the
    // bound, each holding one point of the trip.
    let backlog = super::routes::MAX_FRESH_PIECES as i64 + 1;
    {
        let store =
            crate::routes::RouteStore::open(&dir.path().join(super::ROUTES_FILE)).expect("opens");
        for i in 0..backlog {
            let point = RoutePoint {
                ts: START + 1_000 + i,
                lat: HERE.lat,
                lon: HERE.lon,
            };
            store
                .add_fresh_trips([("t", &[point][..])])
                .expect("written");
        }
    }
    let engine = persistent(clock.clone());
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("recovers");
    assert!(engine.route_backlog().behind);

    // A batch holding no trip point goes on.
    let _ = engine
        .update_positions(vec![here_at("bob", START + 10)])
        .expect("taken")
        .wait();
    assert!(engine.traveller("bob", Some("bob")).is_some());
    // One holding a trip point is refused whole, with nothing of it applied or logged.
    let refused =
        engine.update_positions(vec![here_at("bob", START + 20), here_at("ann", START + 20)]);
    assert!(
        matches!(refused, Err(EngineError::RoutesBehind)),
        "{refused:?}"
    );
    assert!(engine.traveller("ann", Some("ann")).is_none());
    let bob = engine.traveller("bob", Some("bob")).expect("seen");
    assert_eq!(
        bob.at.ts,
        START + 10,
        "the refused batch's other report is not applied"
    );
    assert_eq!(engine.route_backlog().refused, 1);

    // The refusal woke the route thread; once it has settled, the same batch is taken.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match engine.update_positions(vec![here_at("bob", START + 20), here_at("ann", START + 20)])
        {
            Ok(written) => {
                let _ = written.wait();
                break;
            }
            Err(EngineError::RoutesBehind) => {
                assert!(std::time::Instant::now() < deadline, "never caught up");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!engine.route_backlog().behind);
    assert_eq!(engine.route_backlog().fresh_pieces, 0);
    let route = whole_route(&engine);
    let mut expected: Vec<i64> = (0..backlog).map(|i| START + 1_000 + i).collect();
    expected.push(START + 20);
    expected.sort_unstable();
    assert_eq!(route.iter().map(|p| p.ts).collect::<Vec<_>>(), expected);
    drop(engine);

    // The refused attempts were never logged: a restart replays only the taken batches.
    let engine = persistent(clock);
    let report = engine
        .recover(dir.path(), WalOptions::default())
        .expect("recovers");
    let route = whole_route(&engine);
    assert_eq!(route.len(), expected.len());
    assert_eq!(
        engine.traveller("bob", Some("bob")).expect("seen").at.ts,
        START + 20
    );
    assert!(report.replayed >= 2);
}

#[derive(Debug, Clone)]
enum Step {
    Share(Visibility),
    PutTrip { start: i64, end: Option<i64> },
    DeleteTrip,
    Follow(usize),
    Unfollow(usize),
    Report(i64, bool),
    Wait(i64),
    Zone(bool),
}

/// Home, far from [`HERE`] (more than any shroud of [`HOME_ZONE_M`] reaches).
const HOME: LatLon = LatLon {
    lat: 10.3,
    lon: 20.3,
};
/// The radius of the privacy zone around [`HOME`].
const HOME_ZONE_M: f64 = 300.0;

const VIEWERS: [&str; 3] = ["mum", "eve", "ann"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => prop_oneof![Just(Visibility::Private), Just(Visibility::Friends), Just(Visibility::Public)]
            .prop_map(Step::Share),
        2 => (0i64..60, prop::option::of(0i64..60))
            .prop_map(|(start, len)| Step::PutTrip { start, end: len.map(|l| start + l) }),
        1 => Just(Step::DeleteTrip),
        2 => (0..2usize).prop_map(Step::Follow),
        1 => (0..2usize).prop_map(Step::Unfollow),
        3 => (-20i64..20, any::<bool>()).prop_map(|(ts, home)| Step::Report(ts, home)),
        2 => (1i64..20).prop_map(Step::Wait),
        1 => any::<bool>().prop_map(Step::Zone),
    ]
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(64))]

    /// Whoever looks, through a lookup, nearby, within or the trail, sees the traveller
    /// exactly when the model says: by its sharing (friends: eve), or as a follower of its
    /// trip while the trip runs and the position was reported within it; and never, unless
    /// it is the traveller itself, while it is at home in its privacy zone (the zone put
    /// and deleted as it goes, the trail's points at home hidden whenever they were kept).
    #[test]
    fn who_sees_a_traveller_on_a_trip_matches_the_model(steps in prop::collection::vec(step(), 1..40)) {
        let clock = Arc::new(ManualClock::new(START));
        let engine = persistent(clock.clone());
        let mut sharing = Visibility::Private;
        let mut trip_window: Option<(i64, Option<i64>)> = None;
        let mut followers: Vec<&str> = Vec::new();
        let mut current: Option<(i64, LatLon)> = None;
        let mut zone = false;
        let area = Area::circle(HERE, 100_000.0).expect("a circle");
        for step in steps {
            let now = clock.now_ms();
            match step {
                Step::Share(v) => {
                    let viewers = if v == Visibility::Friends { vec!["eve".into()] } else { vec![] };
                    let _ = engine.set_sharing("ann", Sharing::new(v, viewers).expect("valid")).expect("set");
                    sharing = v;
                }
                Step::PutTrip { start, end } => {
                    let (start, end) = (START + start * 100, end.map(|e| START + e * 100));
                    if engine.put_trip(trip("t", "ann", start, end)).is_ok() {
                        if trip_window.is_none() {
                            followers.clear();
                        }
                        trip_window = Some((start, end));
                    }
                }
                Step::DeleteTrip => {
                    let _ = engine.delete_trip("t").expect("deleted");
                    trip_window = None;
                    followers.clear();
                }
                Step::Follow(v) => {
                    if engine.add_follower("t", VIEWERS[v]).is_ok() && !followers.contains(&VIEWERS[v]) {
                        followers.push(VIEWERS[v]);
                    }
                }
                Step::Unfollow(v) => {
                    let _ = engine.remove_follower("t", VIEWERS[v]).expect("removed");
                    followers.retain(|f| *f != VIEWERS[v]);
                }
                Step::Report(offset, home) => {
                    let ts = now + offset * 100;
                    let at = if home { HOME } else { HERE };
                    report(&engine, "ann", ts, at);
                    if current.is_none_or(|(c, _)| ts > c) {
                        current = Some((ts, at));
                    }
                }
                Step::Zone(on) => {
                    if on {
                        let home = Area::circle(HOME, HOME_ZONE_M).expect("a circle");
                        let _ = engine.put_privacy_zone("ann", "home", home).expect("put");
                    } else {
                        let _ = engine.delete_privacy_zone("ann", "home").expect("deleted");
                    }
                    zone = on;
                }
                Step::Wait(ms) => {
                    clock.advance(ms * 100);
                    tick(&engine);
                }
            }
            let now = clock.now_ms();
            for viewer in VIEWERS {
                let by_sharing = viewer == "ann"
                    || sharing == Visibility::Public
                    || (sharing == Visibility::Friends && viewer == "eve");
                let by_trip = match (trip_window, current) {
                    (Some((start, end)), Some((ts, _))) => {
                        start <= now && end.is_none_or(|e| now < e)
                            && followers.contains(&viewer) && ts >= start
                    }
                    _ => false,
                };
                let hidden = zone
                    && viewer != "ann"
                    && current.is_some_and(|(_, at)| at == HOME);
                let want = current.is_some() && (by_sharing || by_trip) && !hidden;
                prop_assert_eq!(sees(&engine, viewer), want, "{} at {}", viewer, now);
                let place = current.map_or(HERE, |(_, at)| at);
                let near = engine.nearby_travellers(place, 1_000.0, 10, Some(viewer));
                prop_assert_eq!(!near.is_empty(), want);
                if let Some(trail) = engine.trail("ann", Some(viewer), i64::MIN) {
                    prop_assert!(
                        viewer == "ann" || !zone || trail.iter().all(|p| p.position != HOME),
                        "{} sees ann at home in her zone: {:?}", viewer, trail
                    );
                }
                let within = engine.travellers_within(&area, Some(viewer), 10, None).expect("page");
                prop_assert_eq!(!within.travellers.is_empty(), want);
            }
        }
    }
}

#[test]
fn a_trips_followers_woken_by_the_same_points_settle_them_once_and_each_reads_them_all() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    let _ = engine.put_trip(trip("t", "ann", START, None)).expect("put");
    let _ = engine.put_trip(trip("u", "bob", START, None)).expect("put");
    let _followers: Vec<_> = (0..3).map(|_| engine.watch_route("t")).collect();
    // The first point starts the route thread, which naps before its first round: points
    // wait in memory while the followers read, another trip's as on a busy server.
    report(&engine, "bob", START + 5, HERE);
    let before = engine.route_reader_settlings();
    report(&engine, "ann", START + 10, HERE);
    for _ in 0..3 {
        assert_eq!(route_times(&engine), vec![START + 10]);
    }
    // (At most: should the route thread's round come first on a slow machine, it settles
    // the points and no reader has to.)
    assert!(
        engine.route_reader_settlings() - before <= 1,
        "the first reader settles, the others find nothing new"
    );
    // A later point is counted past that settling: the next reader settles again (unless
    // the route thread has meanwhile, when none need to), and every reader sees it.
    let before = engine.route_reader_settlings();
    report(&engine, "ann", START + 20, HERE);
    for _ in 0..3 {
        assert_eq!(route_times(&engine), vec![START + 10, START + 20]);
    }
    assert!(engine.route_reader_settlings() - before <= 1);
    // An unwatched trip's readers each settle what waits (nothing counts its changes).
    report(&engine, "bob", START + 30, HERE);
    let read_u = || {
        engine
            .route("u", i64::MIN, i64::MAX, None, 10)
            .expect("reads")
            .0
            .len()
    };
    assert_eq!(read_u(), 2);
    assert_eq!(read_u(), 2);
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(64))]

    /// A traveller's trips listed a page at a time, for any viewer, are exactly the ones
    /// the one rule lets it see ([`crate::trips::TripRecord::visible_to`]), newest first,
    /// each once; and a trip is read for a viewer exactly when the rule lets it.
    #[test]
    fn pages_of_a_travellers_trips_are_the_visible_ones_newest_first(
        followed in prop::collection::vec(prop::collection::vec(0usize..3, 0..3), 1..9),
        take in 1usize..4,
    ) {
        let clock = Arc::new(ManualClock::new(START));
        let engine = engine(clock);
        let viewers = ["mum", "dad", "eve"];
        for (i, who) in followed.iter().enumerate() {
            let id = format!("t{i}");
            let start = START + i as i64 * 100;
            let _ = engine.put_trip(trip(&id, "ann", start, Some(start + 50))).expect("put");
            for &v in who {
                let _ = engine.add_follower(&id, viewers[v]).expect("added");
            }
        }
        for viewer in [Some("ann"), Some("mum"), Some("dad"), Some("eve"), Some("bob"), None] {
            let want: Vec<String> = engine
                .trips_of("ann")
                .into_iter()
                .filter(|r| r.visible_to(viewer))
                .map(|r| r.trip.id().to_owned())
                .collect();
            let mut got = Vec::new();
            let mut after: Option<(i64, String)> = None;
            for pages in 0.. {
                prop_assert!(pages <= followed.len(), "paging goes on: {:?}", got);
                let page = engine.trips_page_of(
                    "ann",
                    viewer,
                    after.as_ref().map(|(s, id)| (*s, id.as_str())),
                    take,
                );
                prop_assert!(page.len() <= take);
                got.extend(page.iter().map(|r| r.trip.id().to_owned()));
                match page.last() {
                    Some(last) if page.len() == take => {
                        after = Some((last.trip.started_at(), last.trip.id().to_owned()));
                    }
                    _ => break,
                }
            }
            prop_assert_eq!(&got, &want, "viewer {:?}", viewer);
            for (i, _) in followed.iter().enumerate() {
                let id = format!("t{i}");
                let seen = engine.trip_seen_by(&id, viewer).is_some();
                let rule = engine.trip(&id).is_some_and(|r| r.visible_to(viewer));
                prop_assert_eq!(seen, rule, "{} for {:?}", id, viewer);
            }
            let mut starts: Vec<i64> = engine.trips_of("ann").iter().map(|r| r.trip.started_at()).collect();
            let sorted = { let mut s = starts.clone(); s.sort_unstable_by(|a, b| b.cmp(a)); s };
            prop_assert_eq!(std::mem::take(&mut starts), sorted, "trips_of is newest first");
        }
        prop_assert!(engine.trip_of("t0", Some("ann")).is_some());
        prop_assert!(engine.trip_of("t0", Some("bob")).is_none());
        prop_assert!(engine.trip_of("t0", None).is_some());
    }
}
