//! [`PendingPoints`]: route points waiting for the store, in the order they arrived, each
//! beside a copy of its trip's id in one shared buffer.
//!
//! This is the write path's share of every trip's point, so it is laid out to cost a copy
//! and nothing else: a map of trips to vectors of points (an `Arc<str>` made for each
//! point, hashed with SipHash, a vector grown for each trip after every piece) took about
//! a fifth of the server's time in the trips workload, more than the route thread's
//! writing of the pieces (`perf`, a million travellers on trips, batches of 1,000). Grouping
//! by trip happens once, on the route thread, when a piece is written
//! ([`PendingPoints::by_trip`]).

use crate::routes::RoutePoint;

/// One waiting point and where its trip's id lies in the buffer.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    id_at: u32,
    id_len: u8,
    point: RoutePoint,
}

/// Points waiting for the store, oldest first.
#[derive(Debug, Default)]
pub(crate) struct PendingPoints {
    /// The trips' ids, back to back (some may be of points taken out already).
    ids: Vec<u8>,
    points: Vec<Waiting>,
    /// The bytes of `ids` that waiting points use: the buffer is compacted when less than
    /// half of it is.
    live: usize,
}

/// Points grouped by trip in the store's key order (the id's length, then the id), each
/// trip's in the order they arrived.
#[derive(Debug, Default)]
pub(crate) struct ByTrip {
    ids: Vec<u8>,
    /// Each trip's id (in `ids`) and points (in `points`).
    trips: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    points: Vec<RoutePoint>,
}

impl ByTrip {
    /// Each trip and its points, in key order.
    pub(crate) fn trips(&self) -> impl Iterator<Item = (&str, &[RoutePoint])> {
        self.trips.iter().map(|(id, points)| {
            let id = std::str::from_utf8(&self.ids[id.clone()]).expect("ids are copied whole");
            (id, &self.points[points.clone()])
        })
    }

    /// How many trips.
    pub(crate) fn len(&self) -> usize {
        self.trips.len()
    }
}

impl PendingPoints {
    /// Files `point` of `trip` (an id of at most 255 bytes, as every id is).
    pub(crate) fn push(&mut self, trip: &str, point: RoutePoint) {
        let id_len = u8::try_from(trip.len()).expect("ids are checked to be short");
        let id_at = u32::try_from(self.ids.len()).expect("fewer than 4 GiB of waiting ids");
        self.ids.extend_from_slice(trip.as_bytes());
        self.live += trip.len();
        self.points.push(Waiting {
            id_at,
            id_len,
            point,
        });
    }

    /// How many points wait.
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether none waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn id(&self, w: &Waiting) -> &[u8] {
        &self.ids[w.id_at as usize..w.id_at as usize + usize::from(w.id_len)]
    }

    fn id_str(&self, w: &Waiting) -> &str {
        std::str::from_utf8(self.id(w)).expect("ids are copied whole")
    }

    /// Each point's trip id and point, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, RoutePoint)> {
        self.points.iter().map(|w| (self.id_str(w), w.point))
    }

    /// Moves every point of `other` after these.
    pub(crate) fn append(&mut self, other: &PendingPoints) {
        let base = u32::try_from(self.ids.len()).expect("fewer than 4 GiB of waiting ids");
        self.ids.extend_from_slice(&other.ids);
        self.live += other.live;
        self.points.extend(other.points.iter().map(|w| Waiting {
            id_at: w.id_at + base,
            ..*w
        }));
    }

    /// Takes out `trip`'s points, oldest first (a scan: readers of a trip under writes,
    /// and erasures, pay it, not the write path).
    pub(crate) fn take_trip(&mut self, trip: &str) -> Vec<RoutePoint> {
        let wanted = trip.as_bytes();
        let (ids, points) = (&self.ids, &mut self.points);
        let id_of = |w: &Waiting| &ids[w.id_at as usize..w.id_at as usize + usize::from(w.id_len)];
        if !points.iter().any(|w| id_of(w) == wanted) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        points.retain(|w| {
            let mine = id_of(w) == wanted;
            if mine {
                taken.push(w.point);
            }
            !mine
        });
        self.live -= taken.len() * trip.len();
        self.compact_if_wasteful();
        taken
    }

    /// Copies the ids still used into a fresh buffer when less than half of it is.
    fn compact_if_wasteful(&mut self) {
        if self.points.is_empty() {
            self.ids.clear();
            self.live = 0;
            return;
        }
        if self.live * 2 >= self.ids.len() {
            return;
        }
        let old = std::mem::take(self);
        for w in &old.points {
            self.push(old.id_str(w), w.point);
        }
    }

    /// Takes out the oldest `count` points (all of them past the end), leaving the rest.
    pub(crate) fn take_oldest(&mut self, count: usize) -> PendingPoints {
        if count >= self.points.len() {
            return std::mem::take(self);
        }
        let rest: Vec<Waiting> = self.points.split_off(count);
        let oldest = std::mem::replace(&mut self.points, rest);
        let mut taken = PendingPoints::default();
        for w in &oldest {
            taken.push(self.id_str(w), w.point);
        }
        // The rest keep their offsets into the buffer, compacted when mostly unused.
        self.live -= taken.live;
        self.compact_if_wasteful();
        taken
    }

    /// The points grouped by trip, in the store's key order. Each id's length and first 16
    /// bytes are compared as numbers, and the ids themselves only on a tie: sorting by the
    /// strings where they lie cost the route thread a fifth of the server's time in the
    /// trips workload (a cache miss a comparison).
    pub(crate) fn by_trip(&self) -> ByTrip {
        let mut order: Vec<(u8, u128, u32)> = self
            .points
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut head = [0u8; 16];
                let id = self.id(w);
                let n = id.len().min(16);
                head[..n].copy_from_slice(&id[..n]);
                (
                    w.id_len,
                    u128::from_be_bytes(head),
                    u32::try_from(i).expect("fewer than 2^32 waiting points"),
                )
            })
            .collect();
        // The arrival index last: a trip's points stay in the order they arrived.
        order.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| {
                    self.id(&self.points[a.2 as usize])
                        .cmp(self.id(&self.points[b.2 as usize]))
                })
                .then(a.2.cmp(&b.2))
        });
        let mut out = ByTrip {
            points: Vec::with_capacity(order.len()),
            ..ByTrip::default()
        };
        for (_, _, i) in order {
            let w = &self.points[i as usize];
            let id = self.id(w);
            let same = out
                .trips
                .last()
                .is_some_and(|(last, _)| &out.ids[last.clone()] == id);
            if !same {
                let at = out.ids.len();
                out.ids.extend_from_slice(id);
                let p = out.points.len();
                out.trips.push((at..out.ids.len(), p..p));
            }
            out.points.push(w.point);
            if let Some((_, points)) = out.trips.last_mut() {
                points.end = out.points.len();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ts: i64) -> RoutePoint {
        RoutePoint {
            ts,
            lat: 1.0,
            lon: 2.0,
        }
    }

    #[test]
    fn points_are_grouped_in_key_order_each_trip_in_arrival_order() {
        let mut pending = PendingPoints::default();
        for (trip, ts) in [
            ("bb", 3),
            ("a", 9),
            ("bb", 1),
            ("ab", 5),
            ("a", 2),
            ("bb", 2),
        ] {
            pending.push(trip, point(ts));
        }
        let grouped = pending.by_trip();
        let got: Vec<(&str, Vec<i64>)> = grouped
            .trips()
            .map(|(t, p)| (t, p.iter().map(|p| p.ts).collect()))
            .collect();
        assert_eq!(
            got,
            vec![("a", vec![9, 2]), ("ab", vec![5]), ("bb", vec![3, 1, 2])]
        );
        assert_eq!(grouped.len(), 3);
    }

    #[test]
    fn long_ids_sharing_a_head_are_ordered_by_the_whole_id() {
        let mut pending = PendingPoints::default();
        let (x, y) = ("bench:trip:000000000002", "bench:trip:000000000001");
        pending.push(x, point(1));
        pending.push(y, point(2));
        let grouped = pending.by_trip();
        let order: Vec<&str> = grouped.trips().map(|(t, _)| t).collect();
        assert_eq!(order, vec![y, x]);
    }

    #[test]
    fn a_trip_is_taken_out_and_the_rest_stay_in_order() {
        let mut pending = PendingPoints::default();
        let mut other = PendingPoints::default();
        pending.push("a", point(1));
        other.push("b", point(2));
        other.push("a", point(3));
        pending.append(&other);
        assert_eq!(
            pending
                .take_trip("a")
                .iter()
                .map(|p| p.ts)
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(pending.take_trip("a").is_empty());
        let rest: Vec<(&str, i64)> = pending.iter().map(|(t, p)| (t, p.ts)).collect();
        assert_eq!(rest, vec![("b", 2)]);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn the_oldest_points_are_taken_first() {
        let mut pending = PendingPoints::default();
        for (trip, ts) in [("a", 1), ("b", 2), ("a", 3)] {
            pending.push(trip, point(ts));
        }
        let oldest = pending.take_oldest(2);
        let taken: Vec<(&str, i64)> = oldest.iter().map(|(t, p)| (t, p.ts)).collect();
        assert_eq!(taken, vec![("a", 1), ("b", 2)]);
        let rest: Vec<(&str, i64)> = pending.iter().map(|(t, p)| (t, p.ts)).collect();
        assert_eq!(rest, vec![("a", 3)]);
        assert!(!pending.is_empty());
        assert_eq!(pending.take_oldest(5).len(), 1);
        assert!(pending.is_empty());
    }

    #[test]
    fn the_ids_buffer_does_not_grow_while_points_come_and_go() {
        let mut pending = PendingPoints::default();
        for round in 0..100 {
            for i in 0..100 {
                pending.push(&format!("trip-{i}"), point(round * 100 + i));
            }
            pending.take_oldest(95);
            pending.take_trip("trip-95");
        }
        // About 4 points a round stay (a growing queue), but never the ids of those gone.
        let live: usize = pending.iter().map(|(t, _)| t.len()).sum();
        assert_eq!(live, pending.live);
        assert!(
            pending.ids.len() <= 2 * live + 8,
            "{} bytes kept for {live}",
            pending.ids.len()
        );
        let mut last = -1;
        for (_, p) in pending.iter() {
            assert!(p.ts > last, "still oldest first");
            last = p.ts;
        }
    }
}
