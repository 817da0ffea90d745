//! [`Trail`]: a traveller's most recent positions, in time order, bounded.

use thin_vec::ThinVec;

use crate::geometry::LatLon;

/// One recorded position.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrailPoint {
    /// Where.
    pub position: LatLon,
    /// When, Unix milliseconds (as the device reported it).
    pub ts: i64,
}

/// The newest `capacity` positions by `ts`, oldest first.
///
/// Invariants: strictly increasing `ts` (the same `ts` twice is kept once); at most the
/// capacity given to [`Trail::insert`].
///
/// The points are in a `ThinVec` (one pointer; length and capacity live in the allocation),
/// so a traveller's record pays 8 bytes for its trail, not a `VecDeque`'s 32. Trails are
/// short (32 points by default), so shifting on insert costs less than a ring buffer's
/// extra fields would in memory across millions of travellers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trail {
    points: ThinVec<TrailPoint>,
}

impl Trail {
    /// Adds a point in time order, keeping the newest `capacity`. Returns `false` if a point
    /// with this `ts` is already there or the point is older than every kept one of a full
    /// trail.
    pub fn insert(&mut self, point: TrailPoint, capacity: usize) -> bool {
        if capacity == 0 {
            return false;
        }
        // Most points arrive in order: look from the back.
        let at = self
            .points
            .iter()
            .rposition(|p| p.ts <= point.ts)
            .map_or(0, |i| i + 1);
        if at > 0 && self.points[at - 1].ts == point.ts {
            return false;
        }
        if self.points.len() >= capacity && at == 0 {
            return false;
        }
        let len = self.points.len();
        if len >= capacity {
            // Full: the oldest go before the new point comes, so the allocation is never
            // grown past the capacity. (Inserting first doubled every full trail's
            // allocation on its next point: +2.5 GB at 10M travellers, `scripts/scale.sh`.)
            let removed = len - capacity + 1;
            if at < removed {
                // Not among the newest `capacity` (only where the trail is longer than
                // the capacity asked now): the trail is cut to it.
                self.points.drain(..len - capacity);
                return false;
            }
            self.points.drain(..removed);
            self.points.insert(at - removed, point);
            return true;
        }
        if len == self.points.capacity() {
            // Grow by doubling from one point, never past the trail's capacity: most
            // travellers hold a point or two, and `ThinVec` would start at four.
            self.points.reserve_exact(len.max(1).min(capacity - len));
        }
        self.points.insert(at, point);
        true
    }

    /// The points with `ts >= since`, oldest first.
    pub fn since(&self, since: i64) -> impl Iterator<Item = &TrailPoint> {
        let start = self.points.partition_point(|p| p.ts < since);
        self.points[start..].iter()
    }

    /// The newest point's timestamp.
    pub fn newest_ts(&self) -> Option<i64> {
        self.points.last().map(|p| p.ts)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the trail is empty.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64) -> TrailPoint {
        TrailPoint {
            position: LatLon {
                lat: 0.0,
                lon: ts as f64 * 1e-3,
            },
            ts,
        }
    }

    #[test]
    fn keeps_the_newest_points_in_time_order_once_each() {
        let mut trail = Trail::default();
        for ts in [5, 1, 3, 3, 9, 7, 2] {
            trail.insert(at(ts), 4);
        }
        let kept: Vec<i64> = trail.since(i64::MIN).map(|p| p.ts).collect();
        assert_eq!(kept, [3, 5, 7, 9]);
        assert!(!trail.insert(at(1), 4), "older than a full trail");
        assert!(!trail.insert(at(7), 4), "same ts twice");
        let recent: Vec<i64> = trail.since(6).map(|p| p.ts).collect();
        assert_eq!(recent, [7, 9]);
    }

    #[test]
    fn a_full_trail_keeps_its_allocation() {
        let mut trail = Trail::default();
        for ts in 0..8 {
            trail.insert(at(ts * 10), 8);
        }
        assert_eq!(trail.points.capacity(), 8);
        for ts in [100, 95, 55, 200] {
            assert!(trail.insert(at(ts), 8));
            assert_eq!(trail.points.capacity(), 8, "after {ts}");
        }
        let kept: Vec<i64> = trail.since(i64::MIN).map(|p| p.ts).collect();
        assert_eq!(kept, [40, 50, 55, 60, 70, 95, 100, 200]);
    }

    proptest::proptest! {
        /// A trail is the newest `capacity` distinct timestamps of all points offered, in
        /// order, whatever their order of arrival, in an allocation of at most `capacity`.
        #[test]
        fn holds_the_newest_points_as_a_sorted_set_would(
            capacity in 1usize..10,
            offers in proptest::collection::vec(0i64..64, 0..80)
        ) {
            let mut trail = Trail::default();
            let mut model = std::collections::BTreeSet::new();
            for ts in offers {
                let had = model.contains(&ts);
                model.insert(ts);
                while model.len() > capacity {
                    model.pop_first();
                }
                let kept = trail.insert(at(ts), capacity);
                proptest::prop_assert_eq!(kept, !had && model.contains(&ts), "insert {} cap {}", ts, capacity);
                let got: Vec<i64> = trail.since(i64::MIN).map(|p| p.ts).collect();
                let want: Vec<i64> = model.iter().copied().collect();
                proptest::prop_assert_eq!(got, want);
                proptest::prop_assert!(trail.points.capacity() <= capacity);
            }
        }
    }
}
