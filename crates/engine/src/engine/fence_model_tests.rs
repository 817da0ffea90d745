//! Fences against a model: random sequences of moves (late and stale ones included),
//! expiries, deletes, sharing changes and fence edits, run through the engine; a plain model
//! says, fence by fence, who is inside after each step, and the events it implies (enter and
//! exit, or nearby and faraway, with their cause, position and distance). The engine's event
//! streams must say exactly that. A second property: no event about a traveller reaches a
//! fence's stream while the fence's viewer could not see that traveller.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proptest::prelude::*;

use super::{Engine, EngineConfig, LiveConfig};
use crate::clock::{Clock, ManualClock};
use crate::events::{Cause, EventConfig, EventKind, Next, Subscription};
use crate::fences::{Fence, FenceKey, FenceKind, FenceQuotas};
use crate::geometry::area::Area;
use crate::geometry::{LatLon, haversine_m};
use crate::pois::CursorKey;
use crate::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};

pub(super) const TTL: i64 = 10_000;
pub(super) const TRAVELLERS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
pub(super) const FENCES: [&str; 4] = ["f0", "f1", "f2", "f3"];
/// The owner of every test fence.
pub(super) const OWNER: &str = "key:model";
/// Who a fence sees: a traveller ("friends nearby"), someone else, or everyone.
const VIEWERS: [Option<&str>; 3] = [Some("a"), Some("v"), None];
/// Who a traveller may share with.
pub(super) const FRIENDS: [&str; 7] = ["a", "b", "c", "d", "e", "f", "v"];

/// The areas static fences use, all within a few kilometres of (10°, 20°).
pub(super) fn areas() -> Vec<Area> {
    let square = |w: f64, s: f64, e: f64, n: f64| {
        vec![vec![
            vec![w, s],
            vec![e, s],
            vec![e, n],
            vec![w, n],
            vec![w, s],
        ]]
    };
    let mut holed = square(19.97, 9.97, 20.03, 10.03);
    holed.push(vec![
        vec![19.99, 9.99],
        vec![19.99, 10.01],
        vec![20.01, 10.01],
        vec![20.01, 9.99],
        vec![19.99, 9.99],
    ]);
    vec![
        Area::polygon(square(19.96, 9.96, 20.0, 10.0), 100).expect("valid"),
        Area::polygon(holed, 100).expect("valid"),
        Area::circle(
            LatLon {
                lat: 10.01,
                lon: 20.01,
            },
            2_500.0,
        )
        .expect("valid"),
    ]
}

#[derive(Debug, Clone)]
pub(super) enum Def {
    Static {
        area: usize,
        viewer: usize,
    },
    Roaming {
        around: usize,
        radius_m: f64,
        viewer: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Update {
        t: usize,
        at: (f64, f64),
        ts_offset: i64,
    },
    Share {
        t: usize,
        visibility: Visibility,
        friend: usize,
    },
    Delete {
        t: usize,
    },
    Advance(i64),
    PutFence {
        f: usize,
        def: Def,
    },
    DeleteFence {
        f: usize,
    },
}

fn near() -> impl Strategy<Value = (f64, f64)> {
    (9.95..10.05f64, 19.95..20.05f64)
}

fn def() -> impl Strategy<Value = Def> {
    prop_oneof![
        (0..3usize, 0..3usize).prop_map(|(area, viewer)| Def::Static { area, viewer }),
        (0..TRAVELLERS.len(), 500.0..5_000.0f64, 0..3usize).prop_map(
            |(around, radius_m, viewer)| Def::Roaming {
                around,
                radius_m,
                viewer
            }
        ),
    ]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..TRAVELLERS.len(), near(), -15_000i64..3_000).prop_map(|(t, at, ts_offset)| Op::Update { t, at, ts_offset }),
        2 => (0..TRAVELLERS.len(), prop::sample::select(vec![Visibility::Private, Visibility::Friends, Visibility::Public]), 0..FRIENDS.len())
            .prop_map(|(t, visibility, friend)| Op::Share { t, visibility, friend }),
        1 => (0..TRAVELLERS.len()).prop_map(|t| Op::Delete { t }),
        2 => (0i64..8_000).prop_map(Op::Advance),
        3 => (0..FENCES.len(), def()).prop_map(|(f, def)| Op::PutFence { f, def }),
        1 => (0..FENCES.len()).prop_map(|f| Op::DeleteFence { f }),
    ]
}

/// A traveller as the model has it: its newest position (kept, as the index keeps it, even
/// once expired, until a later update or a delete clears it) and its sharing.
#[derive(Debug, Clone, Default)]
struct Traveller {
    current: Option<(LatLon, i64, i64)>, // position, ts, seen
    sharing: Sharing,
}

/// Where a roaming fence's traveller was last seen, and whether the fence's viewer saw it.
#[derive(Debug, Clone, Copy)]
struct Centre {
    at: LatLon,
    ts: i64,
    seen: i64,
    visible: bool,
}

#[derive(Debug, Default)]
struct Model {
    travellers: HashMap<&'static str, Traveller>,
    fences: BTreeMap<usize, Def>,
    centres: HashMap<usize, Option<Centre>>,
    inside: BTreeMap<usize, BTreeSet<&'static str>>,
    /// Where each traveller last moved to: where it leaves a fence from, whatever became of
    /// it since (expired, hidden, deleted).
    last_at: HashMap<&'static str, LatLon>,
}

/// An event as compared: kind, traveller, cause, position, and for a roaming fence the
/// distance and where its traveller was (`lat`, `lon`, `ts`).
type Seen = (
    EventKind,
    String,
    Option<Cause>,
    Option<(f64, f64)>,
    Option<(f64, f64, f64, i64)>,
);

/// Events fence by fence.
type Published = BTreeMap<usize, Vec<Seen>>;

impl Model {
    fn viewer(def: &Def) -> Option<&'static str> {
        match def {
            Def::Static { viewer, .. } | Def::Roaming { viewer, .. } => VIEWERS[*viewer],
        }
    }

    fn sees(&self, viewer: Option<&str>, t: &str, now: i64) -> bool {
        self.travellers.get(t).is_some_and(|m| {
            m.current.is_some_and(|(_, _, seen)| now - seen <= TTL)
                && viewer.is_none_or(|v| m.sharing.allows(t, Some(v)))
        })
    }

    fn centre_of(&self, around: usize, viewer: Option<&str>) -> Option<Centre> {
        let t = TRAVELLERS[around];
        let m = self.travellers.get(t)?;
        let (at, ts, seen) = m.current?;
        Some(Centre {
            at,
            ts,
            seen,
            visible: viewer.is_none_or(|v| m.sharing.allows(t, Some(v))),
        })
    }

    fn is_inside(&self, f: usize, t: &'static str, now: i64, areas: &[Area]) -> bool {
        let def = &self.fences[&f];
        let viewer = Self::viewer(def);
        if !self.sees(viewer, t, now) {
            return false;
        }
        let (at, _, _) = self.travellers[t].current.expect("seen");
        match def {
            Def::Static { area, .. } => areas[*area].contains(at),
            Def::Roaming {
                around, radius_m, ..
            } => {
                TRAVELLERS[*around] != t
                    && self.centres[&f].is_some_and(|c| {
                        c.visible && now - c.seen <= TTL && haversine_m(c.at, at) <= *radius_m
                    })
            }
        }
    }

    fn event(&self, f: usize, kind: EventKind, t: &str, cause: Cause) -> Seen {
        let at = self.last_at[t];
        let distance = match self.fences.get(&f) {
            // A centre the fence's viewer may not see (a dormant fence) is not told.
            Some(Def::Roaming { .. }) => self.centres[&f]
                .filter(|c| c.visible)
                .map(|c| (haversine_m(c.at, at), c.at.lat, c.at.lon, c.ts)),
            _ => None,
        };
        (
            kind,
            t.to_string(),
            Some(cause),
            Some((at.lat, at.lon)),
            distance,
        )
    }

    /// Who is inside each fence now, compared with before: the events, fence by fence, in
    /// traveller order.
    fn settle(&mut self, now: i64, cause: Cause, areas: &[Area]) -> BTreeMap<usize, Vec<Seen>> {
        let mut events = BTreeMap::new();
        for f in self.fences.keys().copied().collect::<Vec<_>>() {
            let roaming = matches!(self.fences[&f], Def::Roaming { .. });
            let now_inside: BTreeSet<&'static str> = TRAVELLERS
                .iter()
                .copied()
                .filter(|t| self.is_inside(f, t, now, areas))
                .collect();
            let before = self.inside.get(&f).cloned().unwrap_or_default();
            let mut list = Vec::new();
            for t in before.union(&now_inside) {
                let (enter, exit) = if roaming {
                    (EventKind::Nearby, EventKind::Faraway)
                } else {
                    (EventKind::Enter, EventKind::Exit)
                };
                match (before.contains(t), now_inside.contains(t)) {
                    (false, true) => list.push(self.event(f, enter, t, cause)),
                    (true, false) => list.push(self.event(f, exit, t, cause)),
                    _ => {}
                }
            }
            if !list.is_empty() {
                events.insert(f, list);
            }
            self.inside.insert(f, now_inside);
        }
        events
    }

    fn update(&mut self, t: &'static str, at: LatLon, ts: i64, now: i64) -> bool {
        let m = self.travellers.entry(t).or_default();
        if m.current.is_some_and(|(_, _, seen)| now - seen > TTL) {
            m.current = None;
        }
        let seen = ts.min(now);
        let newer = m.current.is_none_or(|(_, cur, _)| ts > cur);
        let applied = newer && now - seen <= TTL;
        if applied {
            m.current = Some((at, ts, seen));
            self.last_at.insert(t, at);
        }
        applied
    }

    /// Re-reads the centres of the roaming fences around `t`.
    fn recentre(&mut self, t: usize) {
        for (f, def) in &self.fences {
            if let Def::Roaming { around, viewer, .. } = def
                && *around == t
            {
                let centre = self.centre_of(t, VIEWERS[*viewer]);
                self.centres.insert(*f, centre);
            }
        }
    }
}

pub(super) fn engine(clock: Arc<ManualClock>) -> Engine {
    Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock,
        travellers: TravellerConfig {
            trail_capacity: 4,
            ttl_ms: TTL,
        },
        routes: Default::default(),
        live: LiveConfig {
            quotas: FenceQuotas {
                max_fences: 100,
                ..FenceQuotas::default()
            },
            events: EventConfig {
                retention_ms: i64::MAX / 4,
                max_retained: 1_000_000,
                subscriber_buffer: 1_000_000,
                max_subscribers: 10,
            },
        },
    })
}

/// What the engine published since the last call, fence by fence.
fn published(s: &mut Subscription) -> BTreeMap<usize, Vec<Seen>> {
    let mut out: BTreeMap<usize, Vec<Seen>> = BTreeMap::new();
    while let Some(next) = s.try_next() {
        let Next::Event(e) = next else {
            panic!("the test's subscriber never falls behind");
        };
        let f = FENCES
            .iter()
            .position(|f| **f == *e.event.fence.id)
            .expect("a test fence");
        let t = e.event.traveller.as_ref();
        out.entry(f).or_default().push((
            e.event.kind,
            t.map_or(String::new(), |t| t.id.clone()),
            e.event.cause,
            t.map(|t| (t.position.lat, t.position.lon)),
            e.event
                .distance_m
                .zip(e.event.around)
                .map(|(d, a)| (d, a.position.lat, a.position.lon, a.ts)),
        ));
    }
    out
}

pub(super) fn fence_of(f: usize, def: &Def, areas: &[Area]) -> Fence {
    let (kind, viewer) = match def {
        Def::Static { area, viewer } => (FenceKind::Static(areas[*area].clone()), VIEWERS[*viewer]),
        Def::Roaming {
            around,
            radius_m,
            viewer,
        } => (
            FenceKind::Roaming {
                around: TRAVELLERS[*around].to_string(),
                radius_m: *radius_m,
            },
            VIEWERS[*viewer],
        ),
    };
    Fence::new(
        FENCES[f].to_string(),
        OWNER.to_string(),
        viewer.map(String::from),
        kind,
    )
    .expect("valid")
}

/// Runs `op` through the engine and the model; returns what the model expects and what
/// the engine published, fence by fence.
fn step(
    engine: &Engine,
    clock: &ManualClock,
    model: &mut Model,
    stream: &mut Subscription,
    areas: &[Area],
    op: &Op,
) -> Result<(Published, Published), TestCaseError> {
    let now = clock.now_ms();
    let mut expected = match op {
        Op::Update { t, at, ts_offset } => {
            let id = TRAVELLERS[*t];
            let u = PositionUpdate::new(id.into(), at.0, at.1, now + ts_offset, None, None)
                .expect("valid");
            let got = engine
                .update_position(u.clone())
                .expect("in memory")
                .wait()
                .expect("no log");
            let applied = model.update(id, u.position, u.ts, now);
            prop_assert_eq!(got == crate::travellers::UpdateOutcome::Applied, applied);
            if applied {
                model.recentre(*t);
            }
            model.settle(now, Cause::Moved, areas)
        }
        Op::Share {
            t,
            visibility,
            friend,
        } => {
            let sharing =
                Sharing::new(*visibility, vec![FRIENDS[*friend].to_string()]).expect("valid");
            engine
                .set_sharing(TRAVELLERS[*t], sharing.clone())
                .expect("in memory")
                .wait()
                .expect("no log");
            model.travellers.entry(TRAVELLERS[*t]).or_default().sharing = sharing;
            model.recentre(*t);
            model.settle(now, Cause::Sharing, areas)
        }
        Op::Delete { t } => {
            engine
                .delete_traveller(TRAVELLERS[*t])
                .expect("in memory")
                .wait()
                .expect("no log");
            model.travellers.remove(TRAVELLERS[*t]);
            model.recentre(*t);
            model.settle(now, Cause::Deleted, areas)
        }
        Op::Advance(ms) => {
            clock.advance(*ms);
            engine.expire_fences();
            model.settle(now + ms, Cause::Expired, areas)
        }
        Op::PutFence { f, def } => {
            // A roaming fence goes only around a traveller its viewer may see now.
            if let Def::Roaming { around, viewer, .. } = def
                && !model.sees(VIEWERS[*viewer], TRAVELLERS[*around], now)
            {
                let refused = engine.put_fence(fence_of(*f, def, areas), false);
                prop_assert!(
                    matches!(refused, Err(crate::engine::EngineError::NotVisible { .. })),
                    "{:?}",
                    refused.map(|_| ())
                );
                return Ok((BTreeMap::new(), published(stream)));
            }
            engine
                .put_fence(fence_of(*f, def, areas), false)
                .expect("room")
                .wait()
                .expect("no log");
            let old = model.fences.insert(*f, def.clone());
            let kind_changed = old.as_ref().is_some_and(|o| {
                matches!(o, Def::Roaming { .. }) != matches!(def, Def::Roaming { .. })
            });
            let mut events = BTreeMap::new();
            if kind_changed {
                // Everyone leaves the old kind of fence first, then the new one fills.
                let old = old.expect("changed");
                let before = std::mem::take(model.inside.entry(*f).or_default());
                let exit = if matches!(old, Def::Roaming { .. }) {
                    EventKind::Faraway
                } else {
                    EventKind::Exit
                };
                let mut exits = Vec::new();
                model.fences.insert(*f, old);
                for t in before {
                    exits.push(model.event(*f, exit, t, Cause::Fence));
                }
                model.fences.insert(*f, def.clone());
                if !exits.is_empty() {
                    events.insert(*f, exits);
                }
            }
            if let Def::Roaming { around, viewer, .. } = def {
                let centre = model.centre_of(*around, VIEWERS[*viewer]);
                model.centres.insert(*f, centre);
            }
            for (g, list) in model.settle(now, Cause::Fence, areas) {
                events.entry(g).or_insert_with(Vec::new).extend(list);
            }
            events
        }
        Op::DeleteFence { f } => {
            engine
                .delete_fence(&FenceKey::new(OWNER, FENCES[*f]))
                .expect("in memory")
                .wait()
                .expect("no log");
            let mut events = BTreeMap::new();
            if model.fences.remove(f).is_some() {
                model.inside.remove(f);
                events.insert(
                    *f,
                    vec![(EventKind::Deleted, String::new(), None, None, None)],
                );
            }
            events
        }
    };
    let got = published(stream);
    expected.retain(|_, list| !list.is_empty());
    Ok((expected, got))
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn every_fence_publishes_exactly_the_events_of_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let engine = engine(clock.clone());
        let mut stream = engine
            .events()
            .subscribe(OWNER, FENCES.iter().map(|f| Arc::from(*f)).collect(), &[], None, 0)
            .expect("room");
        let areas = areas();
        let mut model = Model::default();
        for op in ops {
            let (expected, got) = step(&engine, &clock, &mut model, &mut stream, &areas, &op)?;
            prop_assert_eq!(&got, &expected, "after {:?}", op);
        }
    }

    #[test]
    fn no_event_tells_a_fences_viewer_what_it_could_not_see(ops in prop::collection::vec(op(), 1..60)) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let engine = engine(clock.clone());
        let mut stream = engine
            .events()
            .subscribe(OWNER, FENCES.iter().map(|f| Arc::from(*f)).collect(), &[], None, 0)
            .expect("room");
        let areas = areas();
        let mut model = Model::default();
        // Where each fence's viewer last saw each traveller inside it.
        let mut shown: HashMap<(usize, String), (f64, f64)> = HashMap::new();
        for op in ops {
            let viewers: HashMap<usize, Option<&str>> =
                model.fences.iter().map(|(f, d)| (*f, Model::viewer(d))).collect();
            let (_, got) = step(&engine, &clock, &mut model, &mut stream, &areas, &op)?;
            let now = clock.now_ms();
            for (f, events) in got {
                for (kind, t, _, at, _) in events {
                    match kind {
                        EventKind::Enter | EventKind::Nearby => {
                            let viewer = Model::viewer(&model.fences[&f]);
                            prop_assert!(model.sees(viewer, &t, now), "{:?}: {} told about {}", op, f, t);
                            let last = model.last_at[t.as_str()];
                            prop_assert_eq!(at, Some((last.lat, last.lon)));
                        }
                        EventKind::Exit | EventKind::Faraway => {
                            // Where the viewer may see it now, or where it saw it last
                            // inside: never a position the viewer could not see.
                            let viewer = viewers[&f];
                            let last = model.last_at.get(t.as_str()).map(|p| (p.lat, p.lon));
                            let visible_now = model.sees(viewer, &t, now) && at == last;
                            let shown_before = at == shown.get(&(f, t.clone())).copied();
                            prop_assert!(visible_now || shown_before, "{:?}: {} exit of {} at {:?}", op, f, t, at);
                        }
                        EventKind::Deleted => {}
                    }
                }
            }
            for (f, inside) in &model.inside {
                for t in inside {
                    let at = model.last_at[t];
                    shown.insert((*f, (*t).to_string()), (at.lat, at.lon));
                }
            }
        }
    }
}
