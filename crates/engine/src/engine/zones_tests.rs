//! Privacy zones through the engine: a traveller inside its zone is seen by nobody but
//! itself, in every view (lookups, nearby, within, trails, the heatmap, fences with or
//! without a viewer, trip routes, stays and figures, links' readers); a zone put later
//! hides what was stored before; and the cut ends of many trips from home do not give home
//! away (the Strava attack). The zone joins the visibility model proptest in
//! `trips_tests`.

use std::sync::Arc;

use super::fence_model_tests::{OWNER, engine};
use super::mutation::PutPrivacyZone;
use super::{Engine, HeatmapLayer};
use crate::clock::ManualClock;
use crate::events::{Cause, EventKind, Next};
use crate::fences::{Fence, FenceKind};
use crate::geometry::area::Area;
use crate::geometry::{BBox, LatLon, haversine_m};
use crate::routes::RoutePoint;
use crate::travellers::{PositionUpdate, Sharing, Visibility};
use crate::trips::Trip;
use crate::zones::{PrivacyZone, ShroudSecret, destination};

const START: i64 = 1_000_000;
const HOME: LatLon = LatLon {
    lat: 48.85,
    lon: 2.35,
};
const ZONE_M: f64 = 200.0;
/// The nearest a shown point may be to home: the zone and the smallest margin.
const NEAREST_SHOWN_M: f64 = ZONE_M * (1.0 + crate::zones::MARGIN_MIN) - 1.0;

fn report(engine: &Engine, who: &str, ts: i64, at: LatLon) {
    let u = PositionUpdate::new(who.into(), at.lat, at.lon, ts, None, None).expect("valid");
    let _ = engine.update_position(u).expect("applied").wait();
}

fn public(engine: &Engine, who: &str) {
    let _ = engine
        .set_sharing(
            who,
            Sharing::new(Visibility::Public, vec![]).expect("valid"),
        )
        .expect("set");
}

fn home_zone(engine: &Engine, who: &str) {
    let area = Area::circle(HOME, ZONE_M).expect("a circle");
    let _ = engine.put_privacy_zone(who, "home", area).expect("put");
}

/// Every way a reader other than `ann` could see her at `at`, and whether any does.
fn anyone_else_sees(engine: &Engine, at: LatLon) -> bool {
    let viewers = [None, Some("mum"), Some("eve")];
    let area = Area::circle(at, 5_000.0).expect("a circle");
    let bbox = BBox::new(at.lon - 0.1, at.lat - 0.1, at.lon + 0.1, at.lat + 0.1).expect("box");
    let heat = engine
        .heatmap(HeatmapLayer::Travellers, &bbox, 5, 1_000)
        .expect("heatmap");
    viewers.iter().any(|&v| {
        engine.traveller("ann", v).is_some()
            || !engine.nearby_travellers(at, 5_000.0, 10, v).is_empty()
            || !engine
                .travellers_within(&area, v, 10, None)
                .expect("page")
                .travellers
                .is_empty()
            || engine
                .trail("ann", v, i64::MIN)
                .is_some_and(|t| t.iter().any(|p| haversine_m(p.position, HOME) <= ZONE_M))
    }) || !heat.is_empty()
}

#[test]
fn inside_its_zone_a_public_traveller_is_seen_by_itself_alone_and_a_later_zone_hides_its_past() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    public(&engine, "ann");
    // Kept before the zone exists: a trail point at home.
    report(&engine, "ann", START, HOME);
    let away = destination(HOME, 90.0, 20_000.0);
    report(&engine, "ann", START + 1, away);
    assert!(anyone_else_sees(&engine, away));
    assert!(
        engine
            .trail("ann", None, i64::MIN)
            .expect("visible")
            .iter()
            .any(|p| p.position == HOME)
    );
    home_zone(&engine, "ann");
    let trail = engine.trail("ann", None, i64::MIN).expect("visible away");
    assert_eq!(
        trail.len(),
        1,
        "the point at home kept before the zone is hidden: {trail:?}"
    );
    // Home again: nobody else sees her, she does.
    report(&engine, "ann", START + 2, HOME);
    assert!(!anyone_else_sees(&engine, HOME));
    assert!(engine.traveller("ann", Some("ann")).is_some());
    assert_eq!(
        engine.nearby_travellers(HOME, 100.0, 10, Some("ann")).len(),
        1
    );
    // So is anywhere in the zone, and a little beyond it.
    for bearing in [0.0, 90.0, 180.0, 270.0] {
        report(
            &engine,
            "ann",
            START + 3,
            destination(HOME, bearing, ZONE_M * 0.99),
        );
        assert!(!anyone_else_sees(&engine, HOME));
    }
    // Deleting the zone shows her again.
    let _ = engine.delete_privacy_zone("ann", "home").expect("deleted");
    report(&engine, "ann", START + 4, HOME);
    assert!(anyone_else_sees(&engine, HOME));
}

#[test]
fn no_fence_sees_a_traveller_enter_in_its_zone_and_a_new_zone_ends_its_memberships() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    public(&engine, "ann");
    public(&engine, "bob");
    let around_home = Area::circle(HOME, 1_000.0).expect("a circle");
    for (id, viewer) in [("all", None), ("mums", Some("mum".to_owned()))] {
        let fence = Fence::new(
            id.into(),
            OWNER.into(),
            viewer,
            FenceKind::Static(around_home.clone()),
        )
        .expect("valid");
        let _ = engine.put_fence(fence, true).expect("put");
    }
    let mut told = engine
        .events()
        .subscribe(
            OWNER,
            vec![Arc::from("all"), Arc::from("mums")],
            &[],
            None,
            0,
        )
        .expect("room");
    // ann has a zone at home before she gets there: no enter, ever.
    home_zone(&engine, "ann");
    report(&engine, "ann", START, HOME);
    // bob is at home too, without a zone: both fences see him; then he adds one.
    report(&engine, "bob", START, HOME);
    home_zone(&engine, "bob");
    let mut seen = Vec::new();
    while let Some(Next::Event(e)) = told.try_next() {
        seen.push((
            e.event.traveller.as_ref().map(|t| t.id.clone()),
            e.event.kind,
            e.event.cause.expect("a cause"),
        ));
    }
    assert!(
        seen.iter().all(|(who, ..)| who.as_deref() == Some("bob")),
        "{seen:?}"
    );
    let bob: Vec<_> = seen.iter().map(|(_, k, c)| (*k, *c)).collect();
    assert_eq!(
        bob,
        [
            (EventKind::Enter, Cause::Moved),
            (EventKind::Enter, Cause::Moved),
            (EventKind::Exit, Cause::Sharing),
            (EventKind::Exit, Cause::Sharing),
        ],
        "{seen:?}"
    );
}

fn trip(engine: &Engine, id: &str, who: &str) {
    let t = Trip::new(id.into(), who.into(), "Out".into(), START, None).expect("valid");
    let _ = engine.put_trip(t).expect("put");
    let _ = engine.add_follower(id, "mum").expect("added");
}

/// A small deterministic generator (xorshift64*), so the walks are the same every run.
struct Walk(u64);

impl Walk {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A trip from home: a few minutes at home, then out towards a destination in a random
/// direction, in `steps` legs of 50 m, one point a minute, each leg's heading turning up
/// to 40° off the way there (streets do not run straight, but a trip goes somewhere).
/// Half the trips are walked back the other way (coming home).
fn walk_from_home(rng: &mut Walk, start: i64, steps: usize) -> Vec<(i64, LatLon)> {
    let mut at = HOME;
    let towards = rng.unit() * 360.0;
    let mut points: Vec<LatLon> = vec![HOME; 5];
    for _ in 0..steps {
        let heading = towards + (rng.unit() - 0.5) * 80.0;
        at = destination(at, heading, 50.0);
        points.push(at);
    }
    if rng.unit() < 0.5 {
        points.reverse();
    }
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| (start + i as i64 * 60_000, p))
        .collect()
}

#[test]
fn a_followers_route_is_cut_at_the_shroud_and_its_stays_and_figures_leave_home_out() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    home_zone(&engine, "ann");
    trip(&engine, "t", "ann");
    let mut rng = Walk(7);
    // Out and home again, three times, with a long stay at home between.
    let mut ts = START;
    for _ in 0..3 {
        let walk = walk_from_home(&mut rng, ts, 120);
        ts = walk.last().expect("points").0 + 3_600_000;
        let updates = walk
            .iter()
            .map(|(t, p)| PositionUpdate::new("ann".into(), p.lat, p.lon, *t, None, None))
            .collect::<Result<Vec<_>, _>>()
            .expect("valid");
        let _ = engine.update_positions(updates).expect("applied").wait();
    }
    let record = engine.trip("t").expect("a trip");
    let all = (i64::MIN, i64::MAX);
    let own = engine
        .shown_route(&record, Some("ann"), all, None, 100_000)
        .expect("reads");
    assert!(own.cuts.is_empty());
    assert!(
        own.points
            .iter()
            .any(|p| haversine_m(p.latlon(), HOME) < ZONE_M)
    );
    for viewer in [Some("mum"), None] {
        let shown = engine
            .shown_route(&record, viewer, all, None, 100_000)
            .expect("reads");
        assert!(!shown.points.is_empty());
        assert!(
            shown
                .points
                .iter()
                .all(|p| haversine_m(p.latlon(), HOME) > NEAREST_SHOWN_M),
            "a point near home is shown to {viewer:?}"
        );
        assert!(!shown.cuts.is_empty(), "the route is cut away from home");
        // Paged, the same points and cuts.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = engine
                .shown_route(&record, viewer, all, after, 37)
                .expect("reads");
            paged.extend(page.points.iter().copied());
            after = page.points.last().map(|p| p.ts);
            if !page.more {
                break;
            }
        }
        assert_eq!(paged, shown.points);
        let figures = engine
            .shown_trip_figures(&record, viewer, all)
            .expect("figures");
        for p in [figures.first, figures.last].into_iter().flatten() {
            assert!(haversine_m(p.latlon(), HOME) > NEAREST_SHOWN_M);
        }
        let stays = engine
            .shown_trip_stays(&record, viewer, all, 100.0, 20 * 60_000)
            .expect("stays");
        assert!(
            stays
                .iter()
                .all(|s| haversine_m(s.stay.centre, HOME) > NEAREST_SHOWN_M),
            "a stay at home is shown to {viewer:?}"
        );
    }
    let stays = engine
        .shown_trip_stays(&record, Some("ann"), all, 100.0, 20 * 60_000)
        .expect("stays");
    assert!(
        stays
            .iter()
            .any(|s| haversine_m(s.stay.centre, HOME) < ZONE_M),
        "she sees her own stays at home"
    );
}

/// Centroid, algebraic circle fit (Kåsa) and box midpoint of `ends`, in metres east and
/// north of `origin`.
fn estimates(origin: LatLon, ends: &[LatLon]) -> Vec<(&'static str, LatLon)> {
    let k = 111_195.0;
    let cos = origin.lat.to_radians().cos();
    let xy: Vec<(f64, f64)> = ends
        .iter()
        .map(|p| ((p.lon - origin.lon) * k * cos, (p.lat - origin.lat) * k))
        .collect();
    let back = |x: f64, y: f64| LatLon {
        lat: origin.lat + y / k,
        lon: origin.lon + x / (k * cos),
    };
    let n = xy.len() as f64;
    let (mx, my) = (
        xy.iter().map(|p| p.0).sum::<f64>() / n,
        xy.iter().map(|p| p.1).sum::<f64>() / n,
    );
    // Kåsa: x² + y² + D x + E y + F = 0 by least squares, around the centroid.
    let (mut suu, mut suv, mut svv, mut suuu, mut svvv, mut suvv, mut svuu) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, y) in &xy {
        let (u, v) = (x - mx, y - my);
        suu += u * u;
        suv += u * v;
        svv += v * v;
        suuu += u * u * u;
        svvv += v * v * v;
        suvv += u * v * v;
        svuu += v * u * u;
    }
    let (b1, b2) = ((suuu + suvv) / 2.0, (svvv + svuu) / 2.0);
    let det = suu * svv - suv * suv;
    let (uc, vc) = ((b1 * svv - b2 * suv) / det, (suu * b2 - suv * b1) / det);
    let (minx, maxx) = xy
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (miny, maxy) = xy
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    vec![
        ("centroid", back(mx, my)),
        ("circle fit", back(mx + uc, my + vc)),
        ("box middle", back((minx + maxx) / 2.0, (miny + maxy) / 2.0)),
    ]
}

#[test]
fn the_cut_ends_of_many_trips_from_home_do_not_give_home_away() {
    // The Strava attack: a follower collects where each trip's shown route starts and
    // ends next to a cut, and estimates the zone's centre from them. Deterministic walks,
    // and shrouds at the corners of the secret's range (the nearest offset is the worst).
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    let secrets = [
        (0.0, 0.0, 0.0),
        (0.3, 0.0, 0.999),
        (0.55, 0.5, 0.5),
        (0.8, 0.999, 0.0),
    ];
    let mut rng = Walk(2026);
    for (z, (bearing, offset, margin)) in secrets.into_iter().enumerate() {
        let who = format!("t{z}");
        let zone = PrivacyZone::new(
            &who,
            "home",
            Area::circle(HOME, ZONE_M).expect("a circle"),
            ShroudSecret {
                bearing,
                offset,
                margin,
            },
        )
        .expect("valid");
        let _ = engine.write(PutPrivacyZone { zone }).expect("put");
        let id = format!("trip{z}");
        trip(&engine, &id, &who);
        let mut ts = START;
        for _ in 0..80 {
            let walk = walk_from_home(&mut rng, ts, 80);
            ts = walk.last().expect("points").0 + 3_600_000;
            let updates = walk
                .iter()
                .map(|(t, p)| PositionUpdate::new(who.clone(), p.lat, p.lon, *t, None, None))
                .collect::<Result<Vec<_>, _>>()
                .expect("valid");
            let _ = engine.update_positions(updates).expect("applied").wait();
        }
        let record = engine.trip(&id).expect("a trip");
        let shown = engine
            .shown_route(&record, Some("mum"), (i64::MIN, i64::MAX), None, 1_000_000)
            .expect("reads");
        // The ends next to each cut (and the first and last shown point, where a trip
        // began or ended hidden).
        let runs = shown.runs();
        let mut ends: Vec<LatLon> = Vec::new();
        for run in &runs {
            let first: &RoutePoint = run.first().expect("a run has points");
            let last: &RoutePoint = run.last().expect("a run has points");
            ends.extend([first.latlon(), last.latlon()]);
        }
        // Only the ends next to home count: each walk's far end is kilometres out.
        ends.retain(|p| haversine_m(*p, HOME) < 3_000.0);
        assert!(ends.len() >= 60, "{} ends", ends.len());
        for p in &shown.points {
            assert!(haversine_m(p.latlon(), HOME) > ZONE_M);
        }
        for (name, guess) in estimates(HOME, &ends) {
            let error = haversine_m(guess, HOME);
            assert!(
                error >= ZONE_M,
                "zone {z}: the {name} of {} ends is {error:.0} m from home, within the zone's {ZONE_M} m",
                ends.len()
            );
        }
    }
}

#[test]
fn zones_and_their_secrets_survive_a_restart_from_the_log_and_from_a_snapshot() {
    use crate::persist::wal::WalOptions;
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(START));
    let open = || {
        let engine = super::trips_tests::persistent(clock.clone());
        engine
            .recover(dir.path(), WalOptions::default())
            .expect("recovers");
        engine
    };
    let engine = open();
    public(&engine, "ann");
    home_zone(&engine, "ann");
    let _ = engine
        .put_privacy_zone(
            "ann",
            "work",
            Area::circle(destination(HOME, 0.0, 5_000.0), 100.0).expect("a circle"),
        )
        .expect("put");
    let secrets = |engine: &Engine| -> Vec<(String, ShroudSecret)> {
        engine
            .privacy_zones_of("ann")
            .iter()
            .map(|z| (z.id().to_owned(), z.secret()))
            .collect()
    };
    let before = secrets(&engine);
    assert_eq!(before.len(), 2);
    drop(engine);
    // From the log.
    let engine = open();
    assert_eq!(secrets(&engine), before);
    report(&engine, "ann", START, HOME);
    assert!(!anyone_else_sees(&engine, HOME));
    // Replacing a zone keeps its secret.
    home_zone(&engine, "ann");
    assert_eq!(secrets(&engine), before);
    let _ = engine.snapshot().expect("snapshot");
    drop(engine);
    // From the snapshot.
    let engine = open();
    assert_eq!(secrets(&engine), before);
    assert!(!anyone_else_sees(&engine, HOME));
    let _ = engine.delete_traveller("ann").expect("deleted");
    assert!(engine.privacy_zones_of("ann").is_empty());
}

#[test]
fn a_roaming_fence_around_a_traveller_in_its_zone_sleeps_tells_nothing_of_it_and_wakes_outside() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    public(&engine, "ann");
    public(&engine, "bob");
    home_zone(&engine, "ann");
    let away = destination(HOME, 90.0, 20_000.0);
    report(&engine, "ann", START, away);
    let fence = Fence::new(
        "near-ann".into(),
        OWNER.into(),
        Some("mum".into()),
        FenceKind::Roaming {
            around: "ann".into(),
            radius_m: 1_000.0,
        },
    )
    .expect("valid");
    let _ = engine.put_fence(fence, true).expect("put");
    let mut told = engine
        .events()
        .subscribe(OWNER, vec![Arc::from("near-ann")], &[], None, 0)
        .expect("room");
    // bob beside ann, away from home: nearby.
    report(&engine, "bob", START + 1, destination(away, 0.0, 100.0));
    // ann goes home, into her zone, and bob walks over: the fence sleeps, and bob's leaving
    // is told with no word of where ann is.
    report(&engine, "ann", START + 2, HOME);
    report(&engine, "bob", START + 3, destination(HOME, 0.0, 100.0));
    // ann out again, bob beside her: the fence wakes.
    let out = destination(HOME, 270.0, 5_000.0);
    report(&engine, "ann", START + 4, out);
    report(&engine, "bob", START + 5, destination(out, 0.0, 100.0));
    let mut events = Vec::new();
    while let Some(Next::Event(e)) = told.try_next() {
        events.push(e.event.clone());
    }
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Nearby, EventKind::Faraway, EventKind::Nearby],
        "{events:?}"
    );
    for e in &events {
        if let Some(around) = e.around {
            assert!(
                haversine_m(around.position, HOME) > NEAREST_SHOWN_M,
                "ann's place in her zone was told: {e:?}"
            );
        }
        if let Some(t) = &e.traveller {
            assert!(haversine_m(t.position, HOME) > NEAREST_SHOWN_M || t.id == "bob");
        }
    }
    assert!(
        events[1].around.is_none() && events[1].distance_m.is_none(),
        "{:?}",
        events[1]
    );
    let woke = events[2].around.expect("the centre it follows again");
    assert!(haversine_m(woke.position, out) < 1.0);
}

/// A zone put or removed changes what a trip's readers may see of its stored route, so
/// the trip's streams are told (they read again under the zones as they now are, and drop
/// what they had read and not yet sent); another traveller's trip is not.
#[test]
fn a_zone_put_or_removed_tells_the_travellers_trip_streams() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    for (id, who) in [("t-ann", "ann"), ("t-bob", "bob")] {
        let t = Trip::new(id.into(), who.into(), "Out".into(), START, None).expect("valid");
        let _ = engine.put_trip(t).expect("put");
    }
    let mut ann = engine.watch_route("t-ann");
    let mut bob = engine.watch_route("t-bob");
    let rules = engine.route_rules("t-ann");
    let count = || rules.load(std::sync::atomic::Ordering::SeqCst);
    ann.mark_unchanged();
    bob.mark_unchanged();
    // A point joins the route: the stream is woken, and the rules are as they were (what
    // it read and has not sent yet stays good).
    report(&engine, "ann", START + 1, HOME);
    assert!(ann.has_changed().expect("open"), "a point");
    assert_eq!(count(), 0, "a point changes no rule");
    ann.mark_unchanged();
    home_zone(&engine, "ann");
    assert!(ann.has_changed().expect("open"), "put");
    assert_eq!(count(), 1, "a zone changes what readers may see");
    assert!(!bob.has_changed().expect("open"));
    let _ = engine.add_follower("t-ann", "mum").expect("added");
    let added = count();
    let _ = engine.remove_follower("t-ann", "mum").expect("removed");
    assert_eq!(
        count(),
        added + 1,
        "a follower removed changes who may read"
    );
    ann.mark_unchanged();
    let _ = engine.delete_privacy_zone("ann", "home").expect("deleted");
    assert!(ann.has_changed().expect("open"), "removed");
    assert!(!bob.has_changed().expect("open"));
}

/// A reader's figures over a window, or under the traveller's zones, are worked out once
/// for each state of the route, window and zones, and are always those of the points it
/// may see now: kept while nothing changes, worked out again after a point is added, a
/// late point arrives, a zone is put or removed.
#[test]
fn shown_figures_are_kept_while_nothing_changes_and_follow_every_change() {
    let clock = Arc::new(ManualClock::new(START));
    let engine = engine(clock.clone());
    trip(&engine, "t", "ann");
    let away = destination(HOME, 90.0, 20_000.0);
    for i in 0..10 {
        let at = if i < 5 {
            HOME
        } else {
            destination(away, 0.0, 100.0 * i as f64)
        };
        report(&engine, "ann", START + 1_000 * i, at);
    }
    let puts = || {
        engine
            .shown_figures
            .puts
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let record = || engine.trip("t").expect("a trip");
    let window = (START + 2_000, START + 100_000);
    let figures = |viewer| {
        engine
            .shown_trip_figures(&record(), viewer, window)
            .expect("figures")
    };
    let brute = |viewer: Option<&str>| {
        let shown = engine
            .shown_route(&record(), viewer, window, None, 100_000)
            .expect("reads");
        let mut fold = crate::routes::FiguresFold::default();
        for p in &shown.points {
            fold.add(*p);
        }
        fold.finish()
    };
    let first = figures(Some("mum"));
    assert_eq!(first.points, 8, "the window's points");
    assert_eq!(first, brute(Some("mum")));
    let worked = puts();
    assert_eq!(figures(Some("mum")), first);
    assert_eq!(puts(), worked, "kept: nothing changed");
    // A point added, then a late one inside the window: worked out again each time.
    report(
        &engine,
        "ann",
        START + 20_000,
        destination(away, 0.0, 2_000.0),
    );
    assert_eq!(figures(Some("mum")).points, 9);
    report(&engine, "ann", START + 4_500, HOME);
    let late = figures(Some("mum"));
    assert_eq!(late.points, 10);
    assert_eq!(late, brute(Some("mum")));
    // A zone hides home from mum: the five home points in the window go.
    home_zone(&engine, "ann");
    let zoned = figures(Some("mum"));
    assert_eq!(zoned, brute(Some("mum")));
    assert!(
        zoned.points < late.points,
        "{} < {}",
        zoned.points,
        late.points
    );
    assert_eq!(
        figures(Some("ann")),
        brute(Some("ann")),
        "ann sees her own home"
    );
    let _ = engine.delete_privacy_zone("ann", "home").expect("deleted");
    assert_eq!(figures(Some("mum")), late);
}
