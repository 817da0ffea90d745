//! Cluster events against a model node: random changes (moves, late and stale ones,
//! sharing, deletes, fence edits, clock ticks) applied as a cluster node applies the
//! stream. One node judges every change from the first; another applies a random prefix
//! quietly (as a node catching up does), then starts judging at the next clock tick. From
//! there on, the second must give exactly the first's events, with the same ids: what lets
//! a client resume on any node.

use std::sync::Arc;

use proptest::prelude::*;

use super::fence_model_tests::{
    FENCES, FRIENDS, OWNER, Op, TRAVELLERS, areas, engine, fence_of, op,
};
use super::mutation::{
    DeleteFence, DeleteTraveller, ExpireFences, Positions, PutFence, SetSharing,
};
use super::{Engine, Mutation};
use crate::clock::{Clock, ManualClock};
use crate::events::{NewEvent, Start};
use crate::travellers::{PositionUpdate, Sharing};

/// The stream records of `ops`, each with the time the stream stored it: the clock of a
/// writer, and for `Advance` a clock tick.
fn records(ops: &[Op]) -> Vec<(i64, Vec<u8>)> {
    let clock = ManualClock::new(1_000_000);
    let areas = areas();
    ops.iter()
        .map(|op| {
            let now = clock.now_ms();
            let mutation: Mutation = match op {
                Op::Update { t, at, ts_offset } => Positions {
                    received_ms: now,
                    updates: vec![
                        PositionUpdate::new(
                            TRAVELLERS[*t].into(),
                            at.0,
                            at.1,
                            now + ts_offset,
                            None,
                            None,
                        )
                        .expect("valid"),
                    ],
                }
                .into(),
                Op::Share {
                    t,
                    visibility,
                    friend,
                } => SetSharing {
                    id: TRAVELLERS[*t].into(),
                    sharing: Sharing::new(*visibility, vec![FRIENDS[*friend].to_string()])
                        .expect("valid"),
                }
                .into(),
                Op::Delete { t } => DeleteTraveller {
                    id: TRAVELLERS[*t].into(),
                    at_ms: now,
                }
                .into(),
                Op::Advance(ms) => {
                    clock.advance(*ms);
                    ExpireFences {
                        at_ms: clock.now_ms(),
                    }
                    .into()
                }
                Op::PutFence { f, def } => PutFence {
                    fence: fence_of(*f, def, &areas),
                    privileged: false,
                }
                .into(),
                Op::DeleteFence { f } => DeleteFence {
                    owner: OWNER.into(),
                    id: FENCES[*f].into(),
                }
                .into(),
            };
            (
                clock.now_ms(),
                crate::persist::encode(&mutation).expect("encodes"),
            )
        })
        .collect()
}

/// Every event the node holds, with its id.
fn events_of(engine: &Engine, after: crate::events::EventId) -> Vec<(String, NewEvent)> {
    let log = engine.events();
    let fences = FENCES.iter().map(|f| Arc::from(*f)).collect();
    let subscription = log
        .subscribe(OWNER, fences, &[], Some(after), 0)
        .expect("room");
    let Start::Events(events) = &subscription.start else {
        panic!("the node holds its events: {:?}", subscription.start);
    };
    events
        .iter()
        .map(|e| (log.id_of(e.place).to_string(), e.event.clone()))
        .collect()
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn a_node_that_starts_judging_late_gives_the_same_events_with_the_same_ids(
        ops in prop::collection::vec(op(), 1..80),
        split in 0..80usize,
    ) {
        let records = records(&ops);
        let split = split.min(records.len());
        let judging_all_along = engine(Arc::new(ManualClock::new(1_000_000)));
        let late = engine(Arc::new(ManualClock::new(1_000_000)));
        for node in [&judging_all_along, &late] {
            node.events().join_cluster(0xc1);
            node.quiet_fences(true);
        }
        judging_all_along.judge_fences_from_next_tick();
        let first = judging_all_along.events().floor(OWNER);
        let mut late_from = None;
        for (i, (stored_ms, record)) in records.iter().enumerate() {
            let seq = i as u64 + 1;
            if i == split {
                late.judge_fences_from_next_tick();
            }
            for node in [&judging_all_along, &late] {
                node.apply_replicated(seq, *stored_ms, record).expect("applies");
            }
            if late_from.is_none() && late.check_judging().is_ok() {
                late_from = Some(late.events().floor(OWNER));
            }
        }
        prop_assert_eq!(
            judging_all_along.state_digest().expect("digest"),
            late.state_digest().expect("digest")
        );
        let Some(late_from) = late_from else {
            // It never started: it was never asked to, or no tick came after.
            let ticked = ops[split..].iter().any(|op| matches!(op, Op::Advance(_)));
            prop_assert!(split == records.len() || !ticked, "a tick came and it did not start");
            return Ok(());
        };
        let all = events_of(&judging_all_along, first);
        let expected: Vec<_> = all
            .into_iter()
            .filter(|(id, _)| {
                id.parse::<crate::events::EventId>().expect("an id") > late_from
            })
            .collect();
        let got = events_of(&late, late_from);
        if std::env::var_os("PROXIMA_TEST_STATS").is_some() {
            eprintln!("split {split} of {}: {} events compared", records.len(), got.len());
        }
        prop_assert_eq!(got, expected);
    }
}
