//! The sweep against every pair of edges: on rings drawn on a small grid (so that edges
//! are often vertical, on one line, through each other's ends, or share positions), it
//! finds a wrong meeting exactly when some pair meets wrongly; and for rings that meet
//! rightly, the ring each lies in is the one a point-in-ring test over every ring gives.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::sweep::{Swept, every_pair, sweep};

type Point = [f64; 2];

/// A closed ring of 3 to 8 grid positions, repeated consecutive ones dropped.
fn ring(grid: i32) -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec((0..grid, 0..grid), 3..9).prop_filter_map("a ring", |points| {
        let mut ring: Vec<Point> = Vec::new();
        for (x, y) in points {
            let p = [f64::from(x), f64::from(y)];
            if ring.last() != Some(&p) {
                ring.push(p);
            }
        }
        while ring.len() > 1 && ring.first() == ring.last() {
            ring.pop();
        }
        (ring.len() >= 3).then(|| {
            ring.push(ring[0]);
            ring
        })
    })
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Whether `p` is strictly inside `ring` (crossing number; `p` off its boundary).
fn strictly_inside(p: Point, ring: &[Point]) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(2048))]

    #[test]
    fn finds_a_wrong_meeting_exactly_when_there_is_one(
        rings in prop::collection::vec(prop_oneof![ring(4), ring(7)], 1..5),
        seed in any::<u64>(),
    ) {
        let swept = sweep(&rings, far(), seed);
        let brute = every_pair(&rings);
        match (&swept, brute) {
            (Swept::Meet(_), Some(_)) | (Swept::Nested(_), None) => {}
            _ => prop_assert!(false, "sweep {:?}, every pair {:?}, rings {:?}", swept, brute, rings),
        }
        // A meeting it names is a wrong one.
        if let Swept::Meet((a, b)) = swept {
            let pair: Vec<Vec<Point>> = rings.clone();
            let one = |r: usize, i: usize| (r, i);
            prop_assert!(every_pair(&pair).is_some(), "{:?} {:?}", one(a.0, a.1), b);
        }
    }

    #[test]
    fn places_each_ring_in_the_ring_around_it(
        squares in prop::collection::vec((0..12i32, 0..12i32, 1..12i32), 1..5),
        seed in any::<u64>(),
    ) {
        // Axis-aligned squares, some nested, some apart, some crossing.
        let rings: Vec<Vec<Point>> = squares
            .iter()
            .map(|&(x, y, s)| {
                let (x, y, s) = (f64::from(x), f64::from(y), f64::from(s));
                vec![[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]
            })
            .collect();
        let Swept::Nested(parents) = sweep(&rings, far(), seed) else {
            return Ok(()); // They meet: nothing to nest.
        };
        for (r, ring) in rings.iter().enumerate() {
            // The smallest other ring holding a corner of this one strictly inside.
            let corner = ring[0];
            let holders: Vec<usize> = (0..rings.len())
                .filter(|&o| o != r && strictly_inside(corner, &rings[o]))
                .collect();
            let want = holders
                .into_iter()
                .min_by(|&a, &b| {
                    let size = |o: usize| rings[o][1][0] - rings[o][0][0];
                    size(a).total_cmp(&size(b))
                });
            prop_assert_eq!(parents[r], want, "ring {} of {:?}", r, rings);
        }
    }
}
