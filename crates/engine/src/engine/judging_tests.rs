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
    assert_eq!(
        kinds(&mut told),
        [
            (EventKind::Enter, Cause::Moved),
            (EventKind::Exit, Cause::Moved),
            (EventKind::Enter, Cause::Moved),
            (EventKind::Exit, Cause::Moved),
        ]
    );
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
