//! Judging that lags behind the writes: every waiting move of a traveller is judged where
//! the traveller was then, so a walk in and out of a fence between two judgements is told;
//! past the bound on waiting moves, the oldest are dropped and counted.

use std::sync::Arc;

use super::Engine;
use super::fence_model_tests::{OWNER, engine};
use crate::clock::{Clock, ManualClock};
use crate::events::{Cause, EventKind, Next, Subscription};
use crate::fences::{Fence, FenceKind};
use crate::geometry::LatLon;
use crate::geometry::area::Area;
use crate::travellers::PositionUpdate;

const INSIDE: (f64, f64) = (10.0, 20.0);
const OUTSIDE: (f64, f64) = (10.5, 20.5);

/// An engine whose changes wait for a judging thread that is not running (so far behind
/// that nothing is judged until the test says), with one 1 km circle fence seeing everyone
/// and a subscriber to its events.
fn lagging() -> (Engine, Arc<ManualClock>, Subscription) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let engine = engine(clock.clone());
    let centre = LatLon {
        lat: INSIDE.0,
        lon: INSIDE.1,
    };
    let area = Area::circle(centre, 1_000.0).expect("a circle");
    let fence =
        Fence::new("f0".into(), OWNER.into(), None, FenceKind::Static(area)).expect("valid");
    let _ = engine.put_fence(fence, true).expect("put");
    let subscription = engine
        .events()
        .subscribe(OWNER, vec![Arc::from("f0")], &[], None, 0)
        .expect("room");
    engine.judging.set_background();
    (engine, clock, subscription)
}

fn walk(engine: &Engine, clock: &ManualClock, to: (f64, f64)) {
    clock.advance(1_000);
    let u = PositionUpdate::new("t".into(), to.0, to.1, clock.now_ms(), None, None).expect("valid");
    let _ = engine.update_position(u).expect("applied").wait();
}

/// What the judging thread would do: judge every waiting traveller.
fn catch_up(engine: &Engine) {
    while let Some((id, marked, number)) = engine.judging.take() {
        engine.judge_traveller(&id, marked);
        engine.judging.done(number);
    }
}

const IN: EventKind = EventKind::Enter;
const OUT: EventKind = EventKind::Exit;

/// Events of `kinds`, each caused by a move.
fn moved(kinds: &[EventKind]) -> Vec<(EventKind, Cause)> {
    kinds.iter().map(|k| (*k, Cause::Moved)).collect()
}

fn kinds(subscription: &mut Subscription) -> Vec<(EventKind, Cause)> {
    let mut out = Vec::new();
    while let Some(Next::Event(e)) = subscription.try_next() {
        out.push((e.event.kind, e.event.cause.expect("a cause")));
    }
    out
}

#[test]
fn moves_in_and_out_between_two_judgements_are_each_told() {
    let (engine, clock, mut told) = lagging();
    for to in [INSIDE, OUTSIDE, INSIDE, OUTSIDE] {
        walk(&engine, &clock, to);
    }
    assert_eq!(
        engine.judging.waiting(),
        1,
        "one traveller waits, with its moves"
    );
    catch_up(&engine);
    assert_eq!(kinds(&mut told), moved(&[IN, OUT, IN, OUT]));
    assert_eq!(engine.judging_coalesced(), 0);
}

#[test]
fn past_the_bound_the_oldest_waiting_moves_are_dropped_and_counted() {
    let (engine, clock, mut subscription) = lagging();
    let moves = super::judging::MAX_WAITING_MOVES + 4;
    for i in 0..moves {
        walk(&engine, &clock, if i % 2 == 0 { INSIDE } else { OUTSIDE });
    }
    catch_up(&engine);
    // The first 4 moves (in, out, in, out) were dropped; the 16 kept alternate from "in".
    let told = kinds(&mut subscription);
    assert_eq!(told.len(), super::judging::MAX_WAITING_MOVES);
    assert_eq!(told[0].0, EventKind::Enter);
    assert_eq!(engine.judging_coalesced(), 4);
}

#[test]
fn moves_made_while_a_traveller_is_being_judged_are_told_after_it_never_before() {
    let (engine, clock, mut told) = lagging();
    walk(&engine, &clock, INSIDE);
    walk(&engine, &clock, OUTSIDE);
    // The judging thread takes the traveller; before it judges, the traveller moves in
    // again (a new entry, judged next).
    let (id, marked, number) = engine.judging.take().expect("waiting");
    walk(&engine, &clock, INSIDE);
    engine.judge_traveller(&id, marked);
    engine.judging.done(number);
    catch_up(&engine);
    assert_eq!(kinds(&mut told), moved(&[IN, OUT, IN]));
}

#[test]
fn a_fence_put_while_moves_wait_is_not_told_of_moves_made_before_it() {
    let (engine, clock, _told) = lagging();
    walk(&engine, &clock, OUTSIDE);
    walk(&engine, &clock, INSIDE);
    let centre = LatLon {
        lat: INSIDE.0,
        lon: INSIDE.1,
    };
    let area = Area::circle(centre, 1_000.0).expect("a circle");
    let fence =
        Fence::new("f1".into(), OWNER.into(), None, FenceKind::Static(area)).expect("valid");
    let mut second = engine
        .events()
        .subscribe(OWNER, vec![Arc::from("f1")], &[], None, 0)
        .expect("room");
    let _ = engine.put_fence(fence, true).expect("put");
    catch_up(&engine);
    assert_eq!(
        kinds(&mut second),
        [(EventKind::Enter, Cause::Fence)],
        "the new fence finds the traveller inside, once"
    );
    assert_eq!(
        engine.judging_coalesced(),
        1,
        "the earlier move, dropped and counted"
    );
}

#[test]
fn a_sharing_change_and_the_moves_after_it_keep_their_own_causes() {
    let (engine, clock, _) = lagging();
    // A fence of viewer "v", and a traveller sharing with "v" only.
    let centre = LatLon {
        lat: INSIDE.0,
        lon: INSIDE.1,
    };
    let area = Area::circle(centre, 1_000.0).expect("a circle");
    let fence = Fence::new(
        "f2".into(),
        OWNER.into(),
        Some("v".into()),
        FenceKind::Static(area),
    )
    .expect("valid");
    let _ = engine.put_fence(fence, true).expect("put");
    let mut seen_by_v = engine
        .events()
        .subscribe(OWNER, vec![Arc::from("f2")], &[], None, 0)
        .expect("room");
    let friends = |viewers: &[&str]| {
        crate::travellers::Sharing::new(
            crate::travellers::Visibility::Friends,
            viewers.iter().map(|v| v.to_string()).collect(),
        )
        .expect("valid")
    };
    let _ = engine
        .set_sharing("t", friends(&["v"]))
        .expect("shared")
        .wait();
    walk(&engine, &clock, INSIDE);
    catch_up(&engine);
    // It stops sharing with "v" while inside, then walks out and back in, all waiting.
    let _ = engine
        .set_sharing("t", friends(&[]))
        .expect("unshared")
        .wait();
    walk(&engine, &clock, OUTSIDE);
    walk(&engine, &clock, INSIDE);
    catch_up(&engine);
    assert_eq!(
        kinds(&mut seen_by_v),
        [
            (EventKind::Enter, Cause::Moved),
            (EventKind::Exit, Cause::Sharing),
        ],
        "the exit is the sharing change's; the moves after it are not v's to see"
    );
}
