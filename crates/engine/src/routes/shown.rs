//! [`ShownRoute`]: the points of a route one reader may see, with where hidden points were
//! cut out (a privacy zone's), so that no line is ever drawn across what was hidden.

use super::RoutePoint;
use super::shape::parts;

/// The points of a route a reader may see, in `ts` order, and the cuts between them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShownRoute {
    /// The points shown.
    pub points: Vec<RoutePoint>,
    /// Indices into `points` where a run of hidden points was cut out just before, in
    /// increasing order.
    pub cuts: Vec<usize>,
    /// Whether more shown points follow (a page's).
    pub more: bool,
}

impl ShownRoute {
    /// The runs of points with no cut between them.
    pub fn runs(&self) -> Vec<&[RoutePoint]> {
        let mut runs = Vec::with_capacity(self.cuts.len() + 1);
        let mut start = 0;
        for &cut in &self.cuts {
            if cut > start && cut <= self.points.len() {
                runs.push(&self.points[start..cut]);
                start = cut;
            }
        }
        if start < self.points.len() {
            runs.push(&self.points[start..]);
        }
        runs
    }

    /// The parts to draw: each run split further after a gap of more than `gap_ms`.
    pub fn parts(&self, gap_ms: i64) -> Vec<&[RoutePoint]> {
        self.runs()
            .into_iter()
            .flat_map(|run| parts(run, gap_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64) -> RoutePoint {
        RoutePoint {
            ts,
            lat: 0.0,
            lon: 0.0,
        }
    }

    #[test]
    fn a_cut_splits_a_part_that_no_gap_would() {
        let shown = ShownRoute {
            points: (0..6).map(|i| at(i * 1_000)).collect(),
            cuts: vec![2, 4],
            more: false,
        };
        let lens: Vec<usize> = shown.parts(60_000).iter().map(|p| p.len()).collect();
        assert_eq!(lens, [2, 2, 2]);
        let lens: Vec<usize> = shown.parts(500).iter().map(|p| p.len()).collect();
        assert_eq!(lens, [1; 6]);
        assert!(ShownRoute::default().parts(1).is_empty());
    }
}
