//! The traveller index checked against a plain model: a map of travellers applying the
//! documented rules, and a linear scan for "who is near here and visible to this viewer".

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::geometry::haversine_m;
use crate::testing::areas::{area_case, oracle, points};

const TTL: i64 = 10_000;
const IDS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

fn coordinate() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        2 => (-90.0..=90.0f64, -180.0..=180.0f64),
        1 => (prop_oneof![Just(90.0), Just(-90.0), 89.999..90.0f64], -180.0..=180.0f64),
        1 => (-10.0..10.0f64, prop_oneof![Just(180.0), Just(-180.0), 179.99..=180.0f64, -180.0..-179.99f64]),
        // A small area, so that travellers cross fine-cell borders (0.011° wide) often.
        3 => (60.16..60.19f64, 24.92..24.96f64),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Update {
        id: usize,
        at: (f64, f64),
        ts_offset: i64,
    },
    Share {
        id: usize,
        visibility: Visibility,
        friend: usize,
    },
    Delete {
        id: usize,
    },
    Advance(i64),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..IDS.len(), coordinate(), -12_000i64..3_000).prop_map(|(id, at, ts_offset)| Op::Update { id, at, ts_offset }),
        // A device clock weeks ahead: past what a record packs inline (12 days).
        1 => (0..IDS.len(), coordinate(), (1i64 << 30)..(1i64 << 32)).prop_map(|(id, at, ts_offset)| Op::Update { id, at, ts_offset }),
        2 => (0..IDS.len(), prop::sample::select(vec![Visibility::Private, Visibility::Friends, Visibility::Public]), 0..IDS.len())
            .prop_map(|(id, visibility, friend)| Op::Share { id, visibility, friend }),
        1 => (0..IDS.len()).prop_map(|id| Op::Delete { id }),
        2 => (0i64..6_000).prop_map(Op::Advance),
        1 => Just(Op::Sweep),
    ]
}

/// What the API promises, written as plainly as possible.
#[derive(Debug, Default, Clone)]
struct Model {
    current: Option<(LatLon, i64, i64)>, // position, ts, seen
    sharing: Sharing,
}

fn model_update(m: &mut Model, at: LatLon, ts: i64, received: i64) -> UpdateOutcome {
    if m.current.is_some_and(|(_, _, seen)| received - seen > TTL) {
        m.current = None;
    }
    let seen = ts.min(received);
    let newer = m.current.is_none_or(|(_, cur, _)| ts > cur);
    if newer && received - seen <= TTL {
        m.current = Some((at, ts, seen));
        UpdateOutcome::Applied
    } else {
        UpdateOutcome::Stale
    }
}

fn visible<'a>(
    model: &'a HashMap<&str, Model>,
    viewer: Option<&str>,
    now: i64,
) -> Vec<(&'a str, LatLon, i64)> {
    model
        .iter()
        .filter_map(|(id, m)| {
            let (p, ts, seen) = m.current?;
            (now - seen <= TTL && m.sharing.allows(id, viewer)).then_some((*id, p, ts))
        })
        .collect()
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn nearby_lookups_and_outcomes_match_the_model(
        ops in prop::collection::vec(op(), 1..80),
        center in coordinate(),
        radius in prop_oneof![Just(0.0), 0.0..3_000.0f64, 0.0..500_000.0f64, Just(crate::geometry::MAX_RADIUS_M)],
        limit in 1usize..10,
        viewer in prop::option::of(0..IDS.len()),
    ) {
        let index = TravellerIndex::new(TravellerConfig { trail_capacity: 4, ttl_ms: TTL });
        let mut model: HashMap<&str, Model> = HashMap::new();
        let mut now = 1_000_000i64;
        for op in ops {
            match op {
                Op::Update { id, at, ts_offset } => {
                    let u = PositionUpdate::new(IDS[id].into(), at.0, at.1, now + ts_offset, None, None).expect("valid");
                    let got = index.update(&u, now);
                    let want = model_update(model.entry(IDS[id]).or_default(), u.position, u.ts, now);
                    prop_assert_eq!(got, want, "update {:?}", u);
                }
                Op::Share { id, visibility, friend } => {
                    let sharing = Sharing::new(visibility, vec![IDS[friend].to_string()]).expect("valid");
                    index.set_sharing(IDS[id], sharing.clone());
                    model.entry(IDS[id]).or_default().sharing = sharing;
                }
                Op::Delete { id } => {
                    let existed = model.remove(IDS[id]).is_some_and(|m| {
                        m.current.is_some_and(|(_, _, seen)| now - seen <= TTL) || !m.sharing.is_default()
                    });
                    prop_assert_eq!(index.delete(IDS[id], now), existed);
                }
                Op::Advance(ms) => now += ms,
                Op::Sweep => {
                    index.sweep(now);
                    // Sweeping frees memory; what readers see must not change.
                }
            }
            prop_assert_eq!(index.check_invariants(), Ok(()));
        }
        let viewer = viewer.map(|v| IDS[v]);
        let center = LatLon::new(center.0, center.1).expect("valid");
        let mut want: Vec<(String, f64)> = visible(&model, viewer, now)
            .into_iter()
            .map(|(id, p, _)| (id.to_string(), haversine_m(center, p)))
            .filter(|(_, d)| *d <= radius)
            .collect();
        want.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        want.truncate(limit);
        let got: Vec<(String, f64)> = index.nearby(center, radius, limit, viewer, now).into_iter().map(|h| (h.at.id, h.distance_m)).collect();
        prop_assert_eq!(got, want);
        for id in IDS {
            let want = visible(&model, viewer, now).into_iter().find(|(v, _, _)| *v == id).map(|(_, p, ts)| (p, ts));
            let got = index.get(id, viewer, now).map(|v| (v.at.position, v.at.ts));
            prop_assert_eq!(got, want, "lookup of {}", id);
            prop_assert_eq!(index.trail(id, viewer, 0, now).is_some(), want.is_some(), "trail of {}", id);
        }
    }
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn within_an_area_matches_a_scan_of_every_traveller(
        case in area_case(),
        unit in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 0..80),
        shares in prop::collection::vec((prop::sample::select(vec![Visibility::Private, Visibility::Friends, Visibility::Public]), 0..IDS.len()), 1..40),
        viewer in prop::option::of(0..IDS.len()),
        limit in 1usize..10,
    ) {
        let index = TravellerIndex::new(TravellerConfig { trail_capacity: 4, ttl_ms: TTL });
        let rings = case.rings();
        let now = 1_000_000i64;
        let mut everyone = Vec::new();
        for (i, p) in points(&rings, &unit).into_iter().enumerate() {
            let id = format!("t{i:03}");
            let (visibility, friend) = shares[i % shares.len()];
            let sharing = Sharing::new(visibility, vec![IDS[friend].to_string()]).expect("valid");
            index.set_sharing(&id, sharing.clone());
            let u = PositionUpdate::new(id.clone(), p.lat, p.lon, now, None, None).expect("valid");
            prop_assert_eq!(index.update(&u, now), UpdateOutcome::Applied);
            everyone.push((id, p, sharing));
        }
        let viewer = viewer.map(|v| IDS[v]);
        let mut want: Vec<String> = everyone
            .iter()
            .filter(|(id, p, sharing)| sharing.allows(id, viewer) && oracle(&rings, *p))
            .map(|(id, _, _)| id.clone())
            .collect();
        want.sort();
        let area = case.area();
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = index.within_area(&area, viewer, after.as_deref(), limit, now);
            prop_assert!(page.items.len() <= limit);
            got.extend(page.items.iter().map(|t| t.id.clone()));
            match page.items.last() {
                Some(last) if page.more => after = Some(last.id.clone()),
                _ => break,
            }
        }
        prop_assert_eq!(got, want, "{:?}", case);
    }
}

/// What a viewer may be shown of a traveller's history, as plainly as possible: every point
/// it reported, with the step it was reported at, and the step from which each viewer has
/// been allowed to see it without a break.
#[derive(Debug, Default)]
struct History {
    reported: Vec<(i64, LatLon, usize)>, // ts, position, step
    allowed_since: HashMap<Option<&'static str>, usize>,
}

impl History {
    /// Records a sharing change at `step`: viewers allowed before and after keep their
    /// step, newly allowed ones start at `step`, the rest lose theirs.
    fn share(&mut self, owner: &str, old: &Sharing, new: &Sharing, step: usize) {
        let viewers = IDS.iter().map(|v| Some(*v)).chain([None]);
        for viewer in viewers {
            match (old.allows(owner, viewer), new.allows(owner, viewer)) {
                (_, false) => {
                    self.allowed_since.remove(&viewer);
                }
                (false, true) => {
                    self.allowed_since.insert(viewer, step);
                }
                (true, true) => {
                    self.allowed_since.entry(viewer).or_insert(0);
                }
            }
        }
    }

    /// Whether the point at `ts` and `at` was reported while `viewer` could see.
    fn may_show(&self, viewer: Option<&str>, ts: i64, at: LatLon) -> bool {
        let Some(since) = self.allowed_since.get(&viewer) else {
            return false;
        };
        self.reported
            .iter()
            .any(|(t, p, step)| *t == ts && *p == at && step >= since)
    }
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    /// The rule for history: a viewer is shown only points reported while it could see the
    /// traveller (from the last time it became allowed); the traveller sees all of its own.
    #[test]
    fn a_trail_shows_a_viewer_only_what_was_reported_while_it_could_see(
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let index = TravellerIndex::new(TravellerConfig { trail_capacity: 4, ttl_ms: TTL });
        let mut sharing: HashMap<&str, Sharing> = HashMap::new();
        let mut history: HashMap<&str, History> = HashMap::new();
        let mut now = 1_000_000i64;
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Update { id, at, ts_offset } => {
                    let u = PositionUpdate::new(IDS[id].into(), at.0, at.1, now + ts_offset, None, None).expect("valid");
                    index.update(&u, now);
                    history.entry(IDS[id]).or_default().reported.push((u.ts, u.position, step));
                }
                Op::Share { id, visibility, friend } => {
                    let new = Sharing::new(visibility, vec![IDS[friend].to_string()]).expect("valid");
                    index.set_sharing(IDS[id], new.clone());
                    let old = sharing.insert(IDS[id], new.clone()).unwrap_or_default();
                    history.entry(IDS[id]).or_default().share(IDS[id], &old, &new, step);
                }
                Op::Delete { id } => {
                    index.delete(IDS[id], now);
                    sharing.remove(IDS[id]);
                    history.remove(IDS[id]);
                }
                Op::Advance(ms) => now += ms,
                Op::Sweep => {
                    index.sweep(now);
                }
            }
        }
        for id in IDS {
            let Some(h) = history.get(id) else { continue };
            for viewer in IDS.iter().map(|v| Some(*v)).chain([None]) {
                let Some(trail) = index.trail(id, viewer, i64::MIN, now) else { continue };
                for point in trail {
                    let own = viewer == Some(id);
                    prop_assert!(
                        own || h.may_show(viewer, point.ts, point.position),
                        "{:?} was shown {}'s point {:?}, not reported while it could see",
                        viewer, id, point
                    );
                }
            }
        }
    }
}

/// Found by the model test: an update already past its time-to-live creates nothing, so
/// deleting that traveller deletes nothing a reader could have seen.
#[test]
fn deleting_a_traveller_whose_only_update_had_already_expired_deletes_nothing() {
    let index = TravellerIndex::new(TravellerConfig {
        trail_capacity: 4,
        ttl_ms: TTL,
    });
    let now = 1_000_000;
    let late = PositionUpdate::new("b".into(), 0.0, 0.0, now - TTL - 1, None, None).expect("valid");
    assert_eq!(index.update(&late, now), UpdateOutcome::Stale);
    assert!(!index.delete("b", now));
    let center = LatLon::new(0.0, 0.0).expect("valid");
    assert!(index.nearby(center, 0.0, 1, None, now).is_empty());
}

#[test]
fn an_out_of_order_update_joins_the_trail_without_moving_the_traveller() {
    let index = TravellerIndex::new(TravellerConfig {
        trail_capacity: 32,
        ttl_ms: 3_600_000,
    });
    let at = |lat: f64, ts: i64| {
        PositionUpdate::new("t".into(), lat, 24.9, ts, None, None).expect("valid")
    };
    let now = 10_000_000;
    assert_eq!(
        index.update(&at(60.2, now - 1_000), now),
        UpdateOutcome::Applied
    );
    assert_eq!(
        index.update(&at(60.1, now - 5_000), now),
        UpdateOutcome::Stale
    );
    assert_eq!(
        index.update(&at(60.1, now - 5_000), now),
        UpdateOutcome::Stale,
        "same (id, ts) again"
    );
    assert_eq!(
        index.get("t", Some("t"), now).map(|v| v.at.position.lat),
        Some(60.2)
    );
    let trail: Vec<i64> = index
        .trail("t", Some("t"), 0, now)
        .expect("visible")
        .iter()
        .map(|p| p.ts)
        .collect();
    assert_eq!(
        trail,
        [now - 5_000, now - 1_000],
        "oldest first, the repeat kept once"
    );
}

#[test]
fn a_clock_running_ahead_counts_age_from_the_receive_time() {
    let index = TravellerIndex::new(TravellerConfig {
        trail_capacity: 4,
        ttl_ms: 1_000,
    });
    let u = PositionUpdate::new("t".into(), 1.0, 1.0, 50_000, None, None).expect("valid");
    assert_eq!(index.update(&u, 10_000), UpdateOutcome::Applied);
    assert!(index.get("t", Some("t"), 10_900).is_some());
    assert!(
        index.get("t", Some("t"), 11_001).is_none(),
        "expired 1 s after it was received"
    );
    assert_eq!(index.sweep(11_001), 1);
    assert!(index.is_empty(), "the sweeper freed it");
}

#[test]
fn a_clock_weeks_ahead_keeps_its_exact_times_through_a_snapshot() {
    let config = TravellerConfig {
        trail_capacity: 4,
        ttl_ms: 1_000,
    };
    let index = TravellerIndex::new(config);
    let ahead = 30 * 24 * 3_600_000; // past the 12 days a record packs inline
    let u = PositionUpdate::new("t".into(), 1.0, 1.0, 10_000 + ahead, None, None).expect("valid");
    assert_eq!(index.update(&u, 10_000), UpdateOutcome::Applied);
    let mut records = Vec::new();
    index
        .export(|r| {
            records.push(r);
            Ok::<_, ()>(())
        })
        .expect("no error");
    let current = records[0].current.clone().expect("a position");
    assert_eq!((current.ts, current.seen_ms), (10_000 + ahead, 10_000));
    let restored = TravellerIndex::new(config);
    restored.restore(records.remove(0));
    for index in [&index, &restored] {
        assert_eq!(
            index.get("t", Some("t"), 10_900).map(|v| v.at.ts),
            Some(10_000 + ahead)
        );
        assert!(
            index.get("t", Some("t"), 11_001).is_none(),
            "expired 1 s after receipt"
        );
    }
    // A later update with an ordinary clock packs inline again and still ages right.
    let u =
        PositionUpdate::new("t".into(), 2.0, 2.0, 10_000 + ahead + 1, None, None).expect("valid");
    assert_eq!(index.update(&u, 10_000 + ahead + 5), UpdateOutcome::Applied);
    assert!(index.get("t", Some("t"), 10_000 + ahead + 1_001).is_some());
    assert!(index.get("t", Some("t"), 10_000 + ahead + 1_002).is_none());
}

/// A judgement reads the traveller it was asked for, whatever its hint says: a hint to a
/// slot freed by a delete and taken by another traveller falls back to the id lookup.
#[test]
fn a_stale_hint_reads_the_traveller_asked_for_not_the_slots_new_holder() {
    let index = TravellerIndex::new(TravellerConfig {
        trail_capacity: 3,
        ttl_ms: TTL,
    });
    let now = 1_000_000i64;
    let report = |id: &str, lat: f64| {
        PositionUpdate::new(id.into(), lat, 0.0, now, None, None).expect("valid")
    };
    let mut hint = None;
    index.update_each(&[report("a", 1.0)], now, |_, at| hint = Some(at));
    let at = |lat: f64| SeenAt {
        position: LatLon::new(lat, 5.0).expect("valid"),
        ts: now,
        seen_ms: now,
    };
    let judged = |id: &str, hint| {
        index.with_seen_copy_at(id, hint, at(7.0), |seen| {
            (seen.id().to_string(), seen.position().map(|p| p.lat))
        })
    };
    assert_eq!(judged("a", hint), Some(("a".to_string(), Some(7.0))));
    // `a` goes, and others come until one of them lands in `a`'s shard, and so in its
    // freed slot (one in 256 does; the hasher is seeded afresh each run).
    assert!(index.delete("a", now));
    let mut others: Vec<String> = Vec::new();
    let mut holder = None;
    for n in 0..100_000 {
        let id = format!("b{n}");
        index.update(&report(&id, 2.0), now);
        if index
            .with_seen_at(hint.expect("applied"), &id, |_| ())
            .is_some()
        {
            holder = Some(id.clone());
        }
        others.push(id);
        if holder.is_some() {
            break;
        }
    }
    let holder = holder.expect("one of them holds a's old slot");
    assert_eq!(judged("a", hint), None, "a is gone, whoever holds its slot");
    assert_eq!(judged(&holder, hint), Some((holder.clone(), Some(7.0))));
    for id in others.iter().step_by(97) {
        assert_eq!(judged(id, hint), Some((id.clone(), Some(7.0))), "{id}");
    }
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(128))]

    /// A batch applied shard by shard (`update_each`) leaves the index as the same reports
    /// applied one at a time do, and tells the same reports applied: repeats of a traveller
    /// in a batch, late and expired reports, new travellers, and moves across cells.
    #[test]
    fn a_batch_applied_together_equals_its_reports_applied_in_turn(
        before in prop::collection::vec((0usize..40, coordinate(), -12_000i64..3_000), 0..60),
        batch in prop::collection::vec((0usize..40, coordinate(), -12_000i64..3_000), 0..120),
    ) {
        let config = TravellerConfig { trail_capacity: 3, ttl_ms: TTL };
        let (together, in_turn) = (TravellerIndex::new(config), TravellerIndex::new(config));
        let now = 1_000_000i64;
        let report = |(id, (lat, lon), offset): (usize, (f64, f64), i64)| {
            PositionUpdate::new(format!("t{id}"), lat, lon, now + offset, None, None).expect("valid")
        };
        for r in before {
            let u = report(r);
            together.update(&u, now);
            in_turn.update(&u, now);
        }
        for id in 0..40 {
            let public = Sharing::new(Visibility::Public, vec![]).expect("valid");
            together.set_sharing(&format!("t{id}"), public.clone());
            in_turn.set_sharing(&format!("t{id}"), public);
        }
        let batch: Vec<PositionUpdate> = batch.into_iter().map(report).collect();
        let later = now + 2_000;
        let mut applied_together = Vec::new();
        let mut handles = Vec::new();
        together.update_each(&batch, later, |i, at| {
            applied_together.push(i);
            handles.push((i, at));
        });
        applied_together.sort_unstable();
        // Each applied report's handle is where its traveller's record lies.
        for (i, at) in handles {
            let id = batch[i].id.as_str();
            prop_assert_eq!(together.with_seen_at(at, id, |seen| seen.id().to_string()), Some(id.to_string()));
        }
        let applied_in_turn: Vec<usize> = batch
            .iter()
            .enumerate()
            .filter(|(_, u)| in_turn.update(u, later) == UpdateOutcome::Applied)
            .map(|(i, _)| i)
            .collect();
        prop_assert_eq!(applied_together, applied_in_turn);
        let records = |index: &TravellerIndex| {
            let mut all = Vec::new();
            index.export(|r| { all.push(r); Ok::<(), ()>(()) }).expect("exported");
            all.sort_by(|a, b| a.id.cmp(&b.id));
            all
        };
        prop_assert_eq!(records(&together), records(&in_turn));
        // Each traveller is in the cell of its position: the whole world's search finds the
        // same travellers at the same places.
        let everyone = |index: &TravellerIndex| {
            let mut hits: Vec<(String, LatLon)> = index
                .nearby(LatLon::new(0.0, 0.0).expect("valid"), 2.1e7, 1_000, None, later)
                .into_iter()
                .map(|h| (h.at.id, h.at.position))
                .collect();
            hits.sort_by(|a, b| a.0.cmp(&b.0));
            hits
        };
        prop_assert_eq!(everyone(&together), everyone(&in_turn));
    }
}
