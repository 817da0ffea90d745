//! Narrowing trips against a model: whatever the order of pushes, narrowings and widenings,
//! pieces written, settlings, trims and reads, every read of a trip gives the points a
//! route keeps by definition (each pushed while inside the trip's window, first of its
//! `ts`, and inside every window narrowed to since), and figures that add them up.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{PendingPoints, Routes};
use crate::geometry::haversine_m;
use crate::routes::{RoutePoint, codec};

const TRIPS: [&str; 2] = ["t", "u"];

#[derive(Debug, Clone)]
enum Op {
    /// Points of a trip at these times (those outside its window are not pushed, as the
    /// engine does not push them); `variant` tells repeats of a `ts` apart.
    Push {
        trip: usize,
        times: Vec<i64>,
        variant: u8,
    },
    /// The trip's window set again: a narrowing if it moves either end inwards.
    Window {
        trip: usize,
        from: i64,
        to: i64,
    },
    /// The route thread's steps, and a snapshot's.
    Piece,
    /// A writer past the bound writes the oldest points waiting as a piece.
    OldestPiece(usize),
    Settle,
    Trim,
    Durable,
    Erase {
        trip: usize,
    },
    Read {
        trip: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, proptest::collection::vec(0i64..40, 1..6), any::<u8>())
            .prop_map(|(trip, times, variant)| Op::Push { trip, times, variant }),
        3 => (0..2usize, 0i64..40, 0i64..40).prop_map(|(trip, a, b)| Op::Window {
            trip,
            from: a.min(b),
            to: a.max(b),
        }),
        1 => Just(Op::Piece),
        1 => (1..8usize).prop_map(Op::OldestPiece),
        1 => Just(Op::Settle),
        1 => Just(Op::Trim),
        1 => Just(Op::Durable),
        1 => (0..2usize).prop_map(|trip| Op::Erase { trip }),
        2 => (0..2usize).prop_map(|trip| Op::Read { trip }),
    ]
}

fn point(ts: i64, variant: u8) -> RoutePoint {
    codec::as_stored(RoutePoint {
        ts,
        lat: 40.0 + ts as f64 * 1e-3 + f64::from(variant) * 1e-5,
        lon: -3.0 + f64::from(variant) * 1e-5,
    })
}

/// The route as the model keeps it, checked against a read of the store.
fn check(
    routes: &Routes,
    trip: &str,
    model: &BTreeMap<i64, RoutePoint>,
) -> Result<(), TestCaseError> {
    let (points, more, figures) = routes
        .read_trip(trip, |store| {
            let (points, more) = store.read(trip, i64::MIN, i64::MAX, None, usize::MAX)?;
            let figures = store.figures(trip)?.unwrap_or_default();
            Ok((points, more, figures))
        })
        .expect("reads");
    prop_assert!(!more);
    let expected: Vec<RoutePoint> = model.values().copied().collect();
    prop_assert_eq!(&points, &expected);
    prop_assert_eq!(figures.points, expected.len() as u64);
    prop_assert_eq!(figures.first, expected.first().copied());
    prop_assert_eq!(figures.last, expected.last().copied());
    let distance: f64 = expected
        .windows(2)
        .map(|w| haversine_m(w[0].latlon(), w[1].latlon()))
        .sum();
    prop_assert!(
        (figures.distance_m - distance).abs() < 1e-6,
        "{} against {}",
        figures.distance_m,
        distance
    );
    Ok(())
}

/// Routes with no route thread: the test takes the thread's steps itself, in its order.
fn without_thread() -> Routes {
    let routes = Routes::default();
    routes
        .fail_starts
        .store(u32::MAX, std::sync::atomic::Ordering::SeqCst);
    // Each trim of the route thread's as it comes, unless the test pauses them.
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::ZERO);
    routes
}

/// Runs `ops` against a store and the model, checking every read and the end; a trim's
/// rewrite writes back `step` points a step.
fn run(ops: Vec<Op>, step: usize) -> Result<(), TestCaseError> {
    run_paused(ops, step, false)
}

/// [`run`]; `paused`: the route thread's trims leave each trip alone for good after its
/// first (settlings, readers and snapshots trim it when they need to), else never.
fn run_paused(ops: Vec<Op>, step: usize, paused: bool) -> Result<(), TestCaseError> {
    let routes = without_thread();
    *routes.inner.rewrite_step.lock() = Some(step);
    *routes.inner.trim_pause.lock() = Some(if paused {
        std::time::Duration::from_secs(3_600)
    } else {
        std::time::Duration::ZERO
    });
    let mut windows = [(0i64, i64::MAX); 2];
    let mut model: [BTreeMap<i64, RoutePoint>; 2] = Default::default();
    let mut seq = 0;
    for op in ops {
        match op {
            Op::Push {
                trip,
                times,
                variant,
            } => {
                let (from, to) = windows[trip];
                let mut points = PendingPoints::default();
                for ts in times.into_iter().filter(|ts| (from..=to).contains(ts)) {
                    let p = point(ts, variant);
                    points.push(TRIPS[trip], p);
                    model[trip].entry(ts).or_insert(p);
                }
                if !points.is_empty() {
                    routes.push(&points);
                }
            }
            Op::Window { trip, from, to } => {
                let old = windows[trip];
                windows[trip] = (from, to);
                if from > old.0 || to < old.1 {
                    routes.narrow(TRIPS[trip], from, to);
                    model[trip].retain(|ts, _| (from..=to).contains(ts));
                }
            }
            Op::Piece => routes.inner.store_pending(),
            Op::OldestPiece(points) => routes.inner.store_some(points),
            Op::Settle => routes.inner.settle(),
            Op::Trim => routes.inner.trim_all_now(),
            Op::Durable => {
                seq += 1;
                routes.make_durable(seq).expect("durable");
                prop_assert_eq!(
                    routes
                        .inner
                        .trims_waiting
                        .load(std::sync::atomic::Ordering::SeqCst),
                    0
                );
            }
            Op::Erase { trip } => {
                routes.erase(TRIPS[trip]);
                model[trip].clear();
            }
            Op::Read { trip } => check(&routes, TRIPS[trip], &model[trip])?,
        }
    }
    for (trip, model) in TRIPS.iter().zip(&model) {
        check(&routes, trip, model)?;
    }
    prop_assert!(
        !routes
            .inner
            .failed
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    Ok(())
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn a_narrowed_route_keeps_what_its_windows_keep(
        ops in proptest::collection::vec(op(), 1..40),
        step in prop_oneof![1..4usize, Just(usize::MAX)],
        paused in any::<bool>(),
    ) {
        run_paused(ops, step, paused)?;
    }
}

fn push(trip: usize, times: &[i64]) -> Op {
    Op::Push {
        trip,
        times: times.to_vec(),
        variant: 0,
    }
}

/// Two narrowings before the trim, at either end: the trim keeps what both keep.
#[test]
fn narrowings_waiting_for_one_trim_add_up() {
    let ops = vec![
        push(0, &[5, 15, 30]),
        Op::Piece,
        Op::Settle,
        Op::Window {
            trip: 0,
            from: 10,
            to: 39,
        },
        Op::Window {
            trip: 0,
            from: 0,
            to: 20,
        },
        Op::Read { trip: 0 },
    ];
    run(ops, 2).expect("the route is the model's");
}

/// Narrowed, widened again and pushed to before the trim runs: the route thread's
/// settling trims first, so the later points stay.
#[test]
fn points_pushed_after_a_narrowing_outlive_its_trim() {
    let ops = vec![
        push(0, &[5, 15, 30]),
        Op::Piece,
        Op::Settle,
        Op::Window {
            trip: 0,
            from: 10,
            to: 20,
        },
        Op::Window {
            trip: 0,
            from: 0,
            to: 39,
        },
        push(0, &[6, 31]),
        Op::Piece,
        Op::Settle,
        Op::Read { trip: 0 },
    ];
    run(ops, 2).expect("the route is the model's");
}

/// More narrowings waiting than a trip may hold, a piece written between each: the last
/// trims at once, and the route is still the model's.
#[test]
fn narrowings_past_the_bound_trim_at_once() {
    let mut ops = vec![push(0, &(0..40).collect::<Vec<_>>()), Op::Piece, Op::Settle];
    for i in 0..super::trims::MAX_NARROWINGS as i64 + 3 {
        ops.push(Op::Window {
            trip: 0,
            from: 0,
            to: 39 - i % 30,
        });
        ops.push(push(0, &[i % 30, 39]));
        ops.push(Op::Piece);
        ops.push(Op::Window {
            trip: 0,
            from: 0,
            to: 39,
        });
    }
    ops.push(Op::Read { trip: 0 });
    run(ops, 2).expect("the route is the model's");
}

/// A reader settles a trip while its trim runs, and meanwhile the trip is ended (a
/// narrowing), opened again and reported to: the point reported after the narrowing is
/// not the narrowing's to cut, and the point before it that lies outside goes.
#[test]
fn a_narrowing_during_a_readers_trim_leaves_later_points_alone() {
    let routes = without_thread();
    let mut points = PendingPoints::default();
    for ts in [5, 15, 30] {
        points.push("t", point(ts, 0));
    }
    routes.push(&points);
    routes.inner.store_pending();
    routes.inner.settle();
    // A narrowing that cuts a settled point waits for its trim.
    routes.narrow("t", 10, 39);
    *routes.inner.during_trim.lock() = Some(Box::new(|inner: &super::Inner| {
        // Ended at 20, opened again (a widening: nothing to do), and a report at 35.
        inner.narrow("t", 10, 20);
        let mut later = PendingPoints::default();
        later.push("t", point(35, 0));
        inner.pending.lock().append(&later);
        inner
            .pending_points
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    // The reader whose trim it is reads the route as it was when it asked.
    let before: BTreeMap<i64, RoutePoint> = [15, 30].map(|ts| (ts, point(ts, 0))).into();
    check(&routes, "t", &before).expect("the route as it was");
    // The next reader, and the route thread's steps, find the point reported after the
    // narrowing, and not the one before it outside its window.
    let after: BTreeMap<i64, RoutePoint> = [15, 35].map(|ts| (ts, point(ts, 0))).into();
    check(&routes, "t", &after).expect("the route is the model's");
    routes.inner.trim_all_now();
    routes.inner.store_pending();
    routes.inner.settle();
    check(&routes, "t", &after).expect("the route is the model's");
}

/// A trim that cuts a long route rewrites it in steps: between two of them another trip's
/// reader, waiting for the store, gets in and settles its trip, while the narrowed trip's
/// reader and a durable mark wait for the last step, and then find the whole trimmed route.
#[test]
fn a_rewrite_lets_other_trips_in_between_its_steps_and_no_one_see_its_part() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;
    let routes = without_thread();
    *routes.inner.rewrite_step.lock() = Some(4);
    // However slow the machine, the rewrite lets all three in before its next step.
    *routes.inner.max_gap.lock() = Some(Duration::from_secs(60));
    let mut points = PendingPoints::default();
    for ts in 0..30 {
        points.push("t", point(ts, 0));
    }
    points.push("u", point(1, 0));
    routes.push(&points);
    routes.inner.store_pending();
    routes.inner.settle();
    // Waiting in memory: a read of `u` settles it, which takes `storing`.
    let mut later = PendingPoints::default();
    later.push("u", point(2, 0));
    routes.push(&later);
    routes.narrow("t", 10, 29);
    // Each reader: what it read, and how many steps had been taken when it got the store.
    let (tx, rx) = mpsc::channel::<(&'static str, usize, Vec<i64>)>();
    let gaps = Arc::new(AtomicUsize::new(0));
    let (inner, in_steps) = (routes.inner.clone(), gaps.clone());
    *routes.inner.between_steps.lock() = Some(Box::new(move |_: &super::Inner| {
        if in_steps.fetch_add(1, Ordering::SeqCst) > 0 {
            return;
        }
        for who in ["u", "t", "durable"] {
            let (inner, tx, gaps) = (inner.clone(), tx.clone(), in_steps.clone());
            std::thread::spawn(move || {
                if who == "durable" {
                    inner.make_durable(1).expect("durable");
                    let _ = tx.send((who, gaps.load(Ordering::SeqCst), Vec::new()));
                    return;
                }
                let storing = inner.store_trip(who);
                let at = gaps.load(Ordering::SeqCst);
                drop(storing);
                let store = inner.store().read();
                let (points, _) = store
                    .read(who, i64::MIN, i64::MAX, None, usize::MAX)
                    .expect("reads");
                let _ = tx.send((who, at, points.iter().map(|p| p.ts).collect()));
            });
        }
        // Each waits for the store, which this step holds (the durable mark's first wait
        // is to write what waits as a piece).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while inner.storing_wanted.load(Ordering::SeqCst) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the three wait for the store"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }));
    routes.inner.trim_all_now();
    let steps = gaps.load(Ordering::SeqCst);
    assert_eq!(steps, 4, "20 points kept, 4 a step: 5 steps");
    let mut seen: Vec<(&str, usize, Vec<i64>)> = (0..3)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("every reader is answered")
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            // After the last step.
            ("durable", steps, vec![]),
            ("t", steps, (10..30).collect()),
            // After the first.
            ("u", 1, vec![1, 2]),
        ]
    );
    let after: BTreeMap<i64, RoutePoint> = (10..30).map(|ts| (ts, point(ts, 0))).collect();
    check(&routes, "t", &after).expect("the route is trimmed, with its figures");
}

/// Pushes `points` (trip, `ts`), writes them as a piece and settles it.
fn settle_points<'a>(routes: &Routes, points: impl IntoIterator<Item = (&'a str, i64)>) {
    let mut pending = PendingPoints::default();
    for (trip, ts) in points {
        pending.push(trip, point(ts, 0));
    }
    routes.push(&pending);
    routes.inner.store_pending();
    routes.inner.settle();
}

/// Thirty settled points of `t`, on a store whose rewrites write back 4 points a step.
fn settled_t() -> Routes {
    let routes = without_thread();
    *routes.inner.rewrite_step.lock() = Some(4);
    settle_points(&routes, (0..30).map(|ts| ("t", ts)));
    routes
}

/// [`settled_t`] narrowed to `from..=to`, its trim's third step failed: the route erased
/// and 8 of its points written back.
fn part_rewritten_t(from: i64, to: i64) -> Routes {
    let routes = settled_t();
    routes.narrow("t", from, to);
    routes.inner.fail_steps.lock().extend([false, false, true]);
    routes.inner.trim_all_now();
    routes
}

/// A rewrite whose third step fails has erased the route and written back 8 of its 20
/// points; the rest are nowhere else. While it is part written, nothing settles into it
/// and no reader reads it; the next trim that writes finishes it.
#[test]
fn a_rewrite_that_fails_part_way_is_finished_by_the_next_trim() {
    let routes = part_rewritten_t(10, 35);
    assert!(
        routes
            .inner
            .failed
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    assert!(routes.inner.trim_waits("t"), "the narrowing waits again");
    // A point of the trip waits in memory; the reader's trim fails again at once.
    let mut later = PendingPoints::default();
    later.push("t", point(32, 0));
    routes.push(&later);
    routes.inner.fail_steps.lock().push_back(true);
    let read = routes.read_trip("t", |store| store.read("t", i64::MIN, i64::MAX, None, 100));
    assert!(
        matches!(read, Err(crate::routes::RouteStoreError::PartRewritten)),
        "no reader reads a route part written: {read:?}"
    );
    routes.inner.settle();
    routes.inner.store_pending();
    routes.inner.settle();
    // The next reader's trim finishes it, and settles the point that waited.
    let after: BTreeMap<i64, RoutePoint> =
        (10..30).chain([32]).map(|ts| (ts, point(ts, 0))).collect();
    check(&routes, "t", &after).expect("the whole trimmed route, with its figures");
    assert!(!routes.inner.trim_waits("t"));
    assert!(
        routes
            .inner
            .failed
            .load(std::sync::atomic::Ordering::SeqCst),
        "the store stays marked behind its log until the next start"
    );
}

/// A reader whose read began before a narrowing's rewrite and read between its steps
/// reads again, after the last step: it never answers with part of the route.
#[test]
fn a_read_that_a_rewrite_overlapped_is_read_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;
    let routes = settled_t();
    // The rewrite stops after its first step until the reader has read.
    let (stepped_tx, stepped_rx) = mpsc::channel::<()>();
    let (read_tx, read_rx) = mpsc::channel::<()>();
    let read_rx = parking_lot::Mutex::new(read_rx);
    let mut first = true;
    *routes.inner.between_steps.lock() = Some(Box::new(move |_: &super::Inner| {
        if std::mem::take(&mut first) {
            let _ = stepped_tx.send(());
            read_rx
                .lock()
                .recv_timeout(Duration::from_secs(10))
                .expect("the reader reads between the steps");
        }
    }));
    let reads = AtomicUsize::new(0);
    let inner = routes.inner.clone();
    let rewriter = parking_lot::Mutex::new(None);
    let times: Vec<i64> = routes
        .read_trip("t", |store| {
            if reads.fetch_add(1, Ordering::SeqCst) == 0 {
                // Narrowed once the reader is past its checks; rewritten on another thread.
                let inner = inner.clone();
                *rewriter.lock() = Some(std::thread::spawn(move || {
                    inner.narrow("t", 10, 29);
                    inner.trim_all_now();
                }));
                stepped_rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("the rewrite takes its first step");
            }
            let (points, _) = store.read("t", i64::MIN, i64::MAX, None, usize::MAX)?;
            if reads.load(Ordering::SeqCst) == 1 {
                assert_eq!(
                    points.len(),
                    4,
                    "the first read finds the route part written"
                );
                read_tx.send(()).expect("the rewrite waits");
            }
            Ok(points.iter().map(|p| p.ts).collect())
        })
        .expect("reads");
    let rewriter = rewriter.lock().take();
    rewriter.expect("spawned").join().expect("the rewrite ends");
    assert_eq!(reads.load(Ordering::SeqCst), 2, "read again");
    assert_eq!(times, (10..30).collect::<Vec<_>>());
}

/// Rewrites that keep beginning in a reader's stripe (other trips narrowed back to back
/// while it reads a long route) make it read again a few times, then once holding the
/// store, under which none begins: it is answered.
#[test]
fn a_reader_is_answered_however_many_rewrites_begin_meanwhile() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let routes = settled_t();
    let reads = AtomicUsize::new(0);
    let points = routes
        .read_trip("t", |store| {
            reads.fetch_add(1, Ordering::SeqCst);
            routes
                .inner
                .rewrites_begun("t")
                .fetch_add(1, Ordering::SeqCst);
            Ok(store
                .read("t", i64::MIN, i64::MAX, None, usize::MAX)?
                .0
                .len())
        })
        .expect("reads");
    assert_eq!(points, 30);
    assert_eq!(reads.load(Ordering::SeqCst), super::READ_TRIES + 1);
}

/// A point a reader took to settle, put back because the trip's trim failed part way, is
/// cut by a narrowing that came while it was out (that narrowing did not see it, and its
/// piece will be numbered past it).
#[test]
fn a_point_put_back_after_a_failed_trim_is_cut_by_a_narrowing_made_meanwhile() {
    let routes = part_rewritten_t(10, 29);
    let mut later = PendingPoints::default();
    later.push("t", point(25, 1));
    later.push("t", point(35, 0));
    routes.push(&later);
    // The reader takes the two points; meanwhile the trip's start moves to 12 and its end
    // to 30; its trim fails again.
    routes.inner.fail_steps.lock().push_back(true);
    *routes.inner.during_trim.lock() = Some(Box::new(|inner: &super::Inner| {
        inner.narrow("t", 12, 30);
    }));
    let read = routes.read_trip("t", |store| store.read("t", i64::MIN, i64::MAX, None, 100));
    assert!(matches!(
        read,
        Err(crate::routes::RouteStoreError::PartRewritten)
    ));
    routes.inner.trim_all_now();
    routes.inner.store_pending();
    routes.inner.settle();
    // 25 was stored first (variant 0), so the later report of it does not replace it.
    let after: BTreeMap<i64, RoutePoint> = (12..30).map(|ts| (ts, point(ts, 0))).collect();
    check(&routes, "t", &after).expect("the point at 35 is cut, 25 kept as first stored");
    assert_eq!(
        routes.pending(),
        0,
        "the point cut is not counted as waiting"
    );
}

/// After a failed write the store is behind its log: a snapshot's durable mark fails, so
/// that the snapshot does not go on to trim the log the next start replays it from.
#[test]
fn a_store_behind_its_log_refuses_the_durable_mark() {
    let routes = settled_t();
    routes
        .make_durable(1)
        .expect("durable while nothing failed");
    routes.narrow("t", 10, 29);
    routes.inner.fail_steps.lock().extend([false, true]);
    routes.inner.trim_all_now();
    assert!(matches!(
        routes.make_durable(2),
        Err(super::EngineError::Routes(
            crate::routes::RouteStoreError::Behind
        ))
    ));
}

/// A settled trip's model ([`settled_t`], [`settle_points`]): the points of `range`.
fn model_t(range: std::ops::RangeInclusive<i64>) -> BTreeMap<i64, RoutePoint> {
    range.map(|ts| (ts, point(ts, 0))).collect()
}

/// The route thread trims a trip, then leaves the trip's next narrowing for its pause: the
/// trim waits, and a reader, who needs it, trims it (and reads no point it cuts).
#[test]
fn the_route_thread_leaves_a_trip_it_trimmed_lately_to_its_readers() {
    let routes = settled_t();
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::from_secs(3_600));
    let waiting = || {
        routes
            .inner
            .trims_waiting
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    routes.narrow("t", 5, 29);
    routes.inner.trim_all_now();
    assert_eq!(waiting(), 0, "the first trim is the route thread's");
    routes.narrow("t", 6, 29);
    routes.inner.trim_all_now();
    assert_eq!(waiting(), 1, "the next waits out the pause");
    check(&routes, "t", &model_t(6..=29)).expect("the reader trims it");
    assert_eq!(waiting(), 0);
    // Once the pause is over, the route thread trims it again.
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::ZERO);
    routes.inner.trim_pacing.lock().until = None;
    routes.narrow("t", 7, 29);
    routes.inner.trim_all_now();
    assert_eq!(waiting(), 0);
    check(&routes, "t", &model_t(7..=29)).expect("trimmed");
}

/// A trip the route thread trimmed lately is narrowed again, widened and reported to: a
/// settling of the piece holding the later point trims the trip first, pause or not, so
/// that the narrowing does not cut a point it never saw.
#[test]
fn a_settling_trims_a_paused_trip_before_points_written_after_its_narrowing() {
    let routes = settled_t();
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::from_secs(3_600));
    routes.narrow("t", 10, 29);
    routes.inner.trim_all_now();
    routes.narrow("t", 12, 29);
    routes.inner.trim_all_now();
    // Widened again (no narrowing), then a point inside the wide window alone.
    let mut points = PendingPoints::default();
    points.push("t", point(3, 0));
    routes.push(&points);
    routes.inner.store_pending();
    routes.inner.settle();
    let mut model = model_t(12..=29);
    model.insert(3, point(3, 0));
    check(&routes, "t", &model).expect("the later point stays, the narrowed ones go");
}

/// A trip narrowed again and again, its window shrinking, a piece written between each:
/// its narrowings wait as one, so none trims on the write path.
#[test]
fn narrowings_that_shrink_the_window_wait_as_one() {
    let routes = settled_t();
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::from_secs(3_600));
    routes.narrow("t", 1, 29);
    routes.inner.trim_all_now();
    for from in 2..=super::trims::MAX_NARROWINGS as i64 + 10 {
        routes.narrow("t", from.min(20), 29);
        let mut points = PendingPoints::default();
        points.push("u", point(from, 0));
        routes.push(&points);
        routes.inner.store_pending();
    }
    assert_eq!(routes.inner.trims.lock().get("t").map(Vec::len), Some(1));
    check(&routes, "t", &model_t(20..=29)).expect("trimmed by the reader");
}

/// After its pause, the route thread trims the trip it has not trimmed lately first, and
/// one trim's pause holds every other: two trips narrowed back to back take turns, and
/// neither takes more of the route thread than the pause leaves.
#[test]
fn the_route_thread_trims_the_trip_trimmed_longest_ago_first_one_pause_for_all() {
    let routes = settled_t();
    settle_points(&routes, (0..30).map(|ts| ("u", ts)));
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::from_secs(3_600));
    let waits = |trip: &str| routes.inner.trims.lock().contains_key(trip);
    routes.narrow("t", 1, 29);
    routes.inner.trim_all_now();
    assert!(!waits("t"));
    routes.narrow("t", 2, 29);
    routes.narrow("u", 1, 29);
    routes.inner.trim_all_now();
    assert!(waits("t") && waits("u"), "one pause holds both");
    routes.inner.trim_pacing.lock().until = None;
    routes.inner.trim_all_now();
    assert!(
        waits("t") && !waits("u"),
        "u, never trimmed, first; then the pause"
    );
    routes.inner.trim_pacing.lock().until = None;
    routes.inner.trim_all_now();
    assert!(!waits("t"));
    check(&routes, "t", &model_t(2..=29)).expect("t trimmed");
    check(&routes, "u", &model_t(1..=29)).expect("u trimmed");
}

/// Trips ended by the hundred (narrowings that cut nothing settled: cheap trims, with
/// pauses of microseconds) are all trimmed in one round, not one a round.
#[test]
fn cheap_trims_are_all_run_in_one_round() {
    let routes = without_thread();
    let trips: Vec<String> = (0..100).map(|i| format!("trip-{i}")).collect();
    settle_points(&routes, trips.iter().map(|trip| (trip.as_str(), 5)));
    // A pause after each, shorter than the round waits out.
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::from_millis(1));
    for trip in &trips {
        routes.narrow(trip, 0, 10);
    }
    routes.inner.trim_all_now();
    assert!(routes.inner.trims.lock().is_empty());
}

/// A trip whose narrowings pile up while the route thread pauses (windows that do not
/// hold one another, a piece written between each) is trimmed in the pause once half
/// the bound waits, so that none trims on the write path.
#[test]
fn a_trip_with_many_narrowings_waiting_is_trimmed_in_the_pause() {
    let routes = settled_t();
    *routes.inner.trim_pause.lock() = Some(std::time::Duration::from_secs(3_600));
    routes.narrow("t", 1, 29);
    routes.inner.trim_all_now();
    let half = super::trims::MANY_NARROWINGS as i64;
    for i in 0..half {
        // End later, start later or not: no window holds one after it.
        routes.narrow("t", 2 + i / 4, 40 + i);
        let mut points = PendingPoints::default();
        points.push("u", point(i, 0));
        routes.push(&points);
        routes.inner.store_pending();
    }
    assert_eq!(
        routes.inner.trims.lock().get("t").map(Vec::len),
        Some(half as usize)
    );
    routes.inner.trim_all_now();
    assert!(!routes.inner.trims.lock().contains_key("t"));
    check(&routes, "t", &model_t(2 + (half - 1) / 4..=29)).expect("trimmed");
}
