//! One sweep over a polygon's rings, left to right (Shamos and Hoey), that finds the first
//! pair of edges that meet where they must not, and which ring each ring lies in.
//!
//! Written here rather than with geo, whose crossing sweep tests every pair of edges that
//! overlap in longitude (a 10,000-vertex comb of long edges: 0.6 s) and whose polygon
//! validation tests rings pairwise (a valid 10,000-vertex circle: 0.37 s, a self-crossing
//! star 1.2 s). This sweep is O(n log n) whatever the shape: the active edges are kept in
//! the order they cross the sweep line ([`super::status`]), only neighbours are ever tested,
//! and the leftmost place where two edges meet wrongly is found before the sweep passes it
//! (edges that meet rightly never change order, so the argument of Shamos and Hoey holds).
//! Every decision uses the exact orientation predicate (`robust`, as geo's own kernel), so
//! rounding never makes a valid ring invalid or the reverse.
//!
//! Which meetings are wrong: edges of one ring may meet only where consecutive edges share
//! their position (and must not run back over each other); edges of different rings may
//! touch at a point, but neither cross nor share a stretch, nor cross at a touching
//! position (as far as the neighbours the sweep compares show it).
//!
//! Nesting: when a ring's leftmost position is reached, the edge just below it tells where
//! it lies: inside that edge's ring if that ring's inside is above the edge, else wherever
//! that ring lies.

use std::cmp::Ordering;
use std::time::Instant;

use super::status::Status;

type Point = [f64; 2];

/// An edge, left end first.
#[derive(Debug, Clone, Copy)]
struct Edge {
    lo: Point,
    hi: Point,
    ring: u32,
    /// Its index in its ring: from position `index` to `index + 1`.
    index: u32,
    /// Whether the ring runs from `lo` to `hi` along it (else from `hi` to `lo`).
    forward: bool,
}

impl Edge {
    fn is_vertical(&self) -> bool {
        self.lo[0] == self.hi[0]
    }
}

/// A pair of edges that meet where they must not: `(ring, index)` of each, the lower first.
pub(super) type Meeting = ((usize, usize), (usize, usize));

/// What the sweep found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Swept {
    /// No edges meet wrongly; each ring lies in the ring given (`None`: in none).
    Nested(Vec<Option<usize>>),
    /// These edges meet where they must not.
    Meet(Meeting),
    /// The sweep ran past its deadline.
    TooLong,
}

fn lexi(a: Point, b: Point) -> Ordering {
    a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1]))
}

/// The side of the line `a -> b` that `c` is on: positive to the left.
fn orient(a: Point, b: Point, c: Point) -> f64 {
    robust::orient2d(
        robust::Coord { x: a[0], y: a[1] },
        robust::Coord { x: b[0], y: b[1] },
        robust::Coord { x: c[0], y: c[1] },
    )
}

fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// How two edges meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    /// Not at all.
    Apart,
    /// At one point: an end of one on the other (or a shared end).
    Touch,
    /// Their insides cross at one point.
    Cross,
    /// They share a stretch of positive length.
    Overlap,
}

/// Whether `p` (on the line of `e`) lies on `e`.
fn within(p: Point, e: &Edge) -> bool {
    lexi(e.lo, p) != Ordering::Greater && lexi(p, e.hi) != Ordering::Greater
}

fn contact(a: &Edge, b: &Edge) -> Contact {
    let d1 = sign(orient(a.lo, a.hi, b.lo));
    let d2 = sign(orient(a.lo, a.hi, b.hi));
    let d3 = sign(orient(b.lo, b.hi, a.lo));
    let d4 = sign(orient(b.lo, b.hi, a.hi));
    if d1 == 0 && d2 == 0 {
        // On one line: by where their spans meet.
        let start = if lexi(a.lo, b.lo) == Ordering::Less {
            b.lo
        } else {
            a.lo
        };
        let end = if lexi(a.hi, b.hi) == Ordering::Less {
            a.hi
        } else {
            b.hi
        };
        return match lexi(start, end) {
            Ordering::Less => Contact::Overlap,
            Ordering::Equal => Contact::Touch,
            Ordering::Greater => Contact::Apart,
        };
    }
    if d1 * d2 < 0 && d3 * d4 < 0 {
        return Contact::Cross;
    }
    let touch = (d1 == 0 && within(b.lo, a))
        || (d2 == 0 && within(b.hi, a))
        || (d3 == 0 && within(a.lo, b))
        || (d4 == 0 && within(a.hi, b));
    if touch {
        Contact::Touch
    } else {
        Contact::Apart
    }
}

/// A polygon's rings as edges, with what the checks need of each ring.
struct Rings<'a> {
    rings: &'a [Vec<Point>],
    edges: Vec<Edge>,
}

impl<'a> Rings<'a> {
    fn new(rings: &'a [Vec<Point>]) -> Self {
        let mut edges = Vec::new();
        for (r, ring) in rings.iter().enumerate() {
            for (i, w) in ring.windows(2).enumerate() {
                let forward = lexi(w[0], w[1]) == Ordering::Less;
                let (lo, hi) = if forward { (w[0], w[1]) } else { (w[1], w[0]) };
                edges.push(Edge {
                    lo,
                    hi,
                    ring: r as u32,
                    index: i as u32,
                    forward,
                });
            }
        }
        Self { rings, edges }
    }

    /// Edges in the ring of `e`.
    fn ring_len(&self, e: &Edge) -> usize {
        self.rings[e.ring as usize].len() - 1
    }

    /// Whether `a` and `b` are consecutive edges of one ring.
    fn consecutive(&self, a: &Edge, b: &Edge) -> bool {
        if a.ring != b.ring {
            return false;
        }
        let n = self.ring_len(a);
        let (i, j) = (a.index as usize, b.index as usize);
        (i + 1) % n == j || (j + 1) % n == i
    }

    /// The far end, seen from `p`, of the edge of `e`'s ring that meets `e` at `p` (one of
    /// `e`'s ends).
    fn next_along(&self, e: &Edge, p: Point) -> Point {
        let ring = &self.rings[e.ring as usize];
        let n = self.ring_len(e);
        let i = e.index as usize;
        // Positions `i` and `i + 1` are the edge's; the other edge at `p` is the one before
        // (if `p` is position `i`) or after (if `p` is position `i + 1`).
        if ring[i] == p {
            ring[(i + n - 1) % n]
        } else {
            ring[(i + 2) % n]
        }
    }

    /// Whether `a` and `b` meet where they must not.
    fn wrong(&self, a: &Edge, b: &Edge) -> bool {
        match contact(a, b) {
            Contact::Apart => false,
            Contact::Cross | Contact::Overlap => true,
            Contact::Touch if a.ring == b.ring => !self.consecutive(a, b),
            Contact::Touch => self.cross_at_touch(a, b),
        }
    }

    /// Two rings that touch at a point where one's position lies inside the other's edge
    /// cross there if the ring's two edges at that position go to both sides of the edge.
    fn cross_at_touch(&self, a: &Edge, b: &Edge) -> bool {
        let through = |v: &Edge, e: &Edge, p: Point| {
            let u = if p == v.lo { v.hi } else { v.lo };
            let w = self.next_along(v, p);
            sign(orient(e.lo, e.hi, u)) * sign(orient(e.lo, e.hi, w)) < 0
        };
        let ends_of = |v: &Edge, e: &Edge| {
            [v.lo, v.hi]
                .into_iter()
                .find(|&p| p != e.lo && p != e.hi && orient(e.lo, e.hi, p) == 0.0 && within(p, e))
        };
        if let Some(p) = ends_of(a, b) {
            return through(a, b, p);
        }
        if let Some(p) = ends_of(b, a) {
            return through(b, a, p);
        }
        false
    }

    /// Whether two events at one position are the two edges of one ring that meet there,
    /// going apart (the usual case, needing no more look).
    fn pair_meets_rightly(&self, pair: &[(u32, bool)]) -> bool {
        let (a, b) = (
            &self.edges[pair[0].0 as usize],
            &self.edges[pair[1].0 as usize],
        );
        self.consecutive(a, b) && contact(a, b) == Contact::Touch
    }

    /// What meets wrongly among the edges with an end at `p` (`at_p`, as events): two
    /// edges leaving `p` in one direction (they overlap), a ring that passes `p` twice, or
    /// two rings whose edges alternate around `p` (they cross there). The edges are put in
    /// order around `p` with exact predicates, so this is O(k log k) for `k` edges.
    fn wrong_at(&self, p: Point, at_p: &[(u32, bool)]) -> Option<(u32, u32)> {
        let far = |e: u32| {
            let edge = &self.edges[e as usize];
            if edge.lo == p { edge.hi } else { edge.lo }
        };
        // Counterclockwise from the direction of +x.
        let half = |q: Point| {
            let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
            u8::from(!(dy > 0.0 || (dy == 0.0 && dx > 0.0)))
        };
        let mut around: Vec<u32> = at_p.iter().map(|&(e, _)| e).collect();
        around.sort_by(|&a, &b| {
            let (qa, qb) = (far(a), far(b));
            half(qa)
                .cmp(&half(qb))
                .then_with(|| match sign(orient(p, qa, qb)) {
                    1 => Ordering::Less,
                    -1 => Ordering::Greater,
                    _ => Ordering::Equal,
                })
        });
        // One direction twice: a shared stretch.
        for w in around.windows(2) {
            let (qa, qb) = (far(w[0]), far(w[1]));
            if half(qa) == half(qb) && orient(p, qa, qb) == 0.0 {
                return Some((w[0], w[1]));
            }
        }
        // A ring's edges at `p` come in twos; more than two, it passes `p` again.
        let ring_of = |e: u32| self.edges[e as usize].ring;
        for &e in &around {
            let mine: Vec<u32> = around
                .iter()
                .copied()
                .filter(|&o| ring_of(o) == ring_of(e))
                .collect();
            if mine.len() > 2 {
                let edge = &self.edges[e as usize];
                let apart = mine
                    .iter()
                    .copied()
                    .find(|&o| o != e && !self.consecutive(edge, &self.edges[o as usize]))
                    .expect(
                        "of three or more edges of a ring at a position, two are not consecutive",
                    );
                return Some((e, apart));
            }
        }
        // Around `p`, a ring's two edges must enclose only rings whose edges both lie
        // between them (chords of a circle that do not cross): else the rings cross at `p`.
        let mut open: Vec<u32> = Vec::new(); // first edges of rings whose second is to come
        for &e in &around {
            match open.iter().position(|&o| ring_of(o) == ring_of(e)) {
                None => open.push(e),
                Some(i) if i + 1 == open.len() => {
                    open.pop();
                }
                Some(_) => {
                    let inner = *open.last().expect("a ring is open");
                    return Some((inner, e));
                }
            }
        }
        None
    }

    /// Whether the inside of `e`'s ring lies above `e` (for a ring without crossings).
    fn inside_above(&self, e: &Edge, ccw: &[bool]) -> bool {
        e.forward == ccw[e.ring as usize]
    }
}

/// Whether each ring runs counterclockwise: the turn at its leftmost position (exact for a
/// ring that does not cross itself).
fn counterclockwise(ring: &[Point]) -> bool {
    let n = ring.len() - 1;
    let (at, _) = ring[..n]
        .iter()
        .enumerate()
        .min_by(|a, b| lexi(*a.1, *b.1))
        .expect("a ring has positions");
    orient(ring[(at + n - 1) % n], ring[at], ring[(at + 1) % n]) > 0.0
}

/// Sweeps `rings` (closed, without repeated consecutive positions), stopping at `deadline`.
pub(super) fn sweep(rings: &[Vec<Point>], deadline: Instant, seed: u64) -> Swept {
    let set = Rings::new(rings);
    let edges = &set.edges;
    // Events: every edge's left end (a start) and right end (an end), by position; at one
    // position, ends before starts, so that only edges passing the position stay in the
    // status when new ones come in.
    let mut events: Vec<(u32, bool)> = (0..edges.len() as u32)
        .flat_map(|e| [(e, false), (e, true)])
        .collect();
    let at = |(e, start): (u32, bool)| {
        let edge = &edges[e as usize];
        if start { edge.lo } else { edge.hi }
    };
    events.sort_unstable_by(|&a, &b| lexi(at(a), at(b)).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
    let ccw: Vec<bool> = rings.iter().map(|r| counterclockwise(r)).collect();
    let mut parent: Vec<Option<Option<usize>>> = vec![None; rings.len()];
    let mut status = Status::new(edges.len(), seed);
    let meet = |a: u32, b: u32| -> Swept {
        let (a, b) = (&edges[a as usize], &edges[b as usize]);
        let (a, b) = (
            (a.ring as usize, a.index as usize),
            (b.ring as usize, b.index as usize),
        );
        Swept::Meet(if a <= b { (a, b) } else { (b, a) })
    };
    let mut group = 0;
    while group < events.len() {
        if group % 256 == 0 && Instant::now() >= deadline {
            return Swept::TooLong;
        }
        // Every event at one position: first what meets there end to end.
        let p = at(events[group]);
        let end = group + events[group..].partition_point(|&ev| at(ev) == p);
        let look =
            end - group > 2 || (end - group == 2 && !set.pair_meets_rightly(&events[group..end]));
        if look && let Some((a, b)) = set.wrong_at(p, &events[group..end]) {
            return meet(a, b);
        }
        for &(e, start) in &events[group..end] {
            let edge = &edges[e as usize];
            if !start {
                let (below, above) = (status.before(e), status.after(e));
                status.remove(e);
                if let (Some(b), Some(a)) = (below, above)
                    && set.wrong(&edges[b as usize], &edges[a as usize])
                {
                    return meet(b, a);
                }
                continue;
            }
            let q = edge.lo;
            let placed = status.insert(e, |other| {
                let t = &edges[other as usize];
                if t.is_vertical() {
                    // Active at `q`, so `q` is on it; it rises from there: above every edge
                    // that starts at `q`, and over a vertical one that does (an overlap).
                    return if edge.is_vertical() {
                        Ordering::Equal
                    } else {
                        Ordering::Less
                    };
                }
                match sign(orient(t.lo, t.hi, q)) {
                    1 => Ordering::Greater,
                    -1 => Ordering::Less,
                    _ => match sign(orient(t.lo, t.hi, edge.hi)) {
                        1 => Ordering::Greater,
                        -1 => Ordering::Less,
                        _ => Ordering::Equal,
                    },
                }
            });
            if let Err(other) = placed {
                // On one line with an edge that goes on past `q`: they share a stretch.
                return meet(e, other);
            }
            let (below, above) = (status.before(e), status.after(e));
            for other in [below, above].into_iter().flatten() {
                if set.wrong(edge, &edges[other as usize]) {
                    return meet(e, other);
                }
            }
            let ring = edge.ring as usize;
            if parent[ring].is_none() {
                // This ring's leftmost position: where it lies is where the edge below lies.
                let lies_in = below.and_then(|b| {
                    let b = &edges[b as usize];
                    if set.inside_above(b, &ccw) {
                        Some(b.ring as usize)
                    } else {
                        parent[b.ring as usize].flatten()
                    }
                });
                parent[ring] = Some(lies_in);
            }
        }
        group = end;
    }
    Swept::Nested(parent.into_iter().map(Option::flatten).collect())
}

/// Every pair of edges of `rings` tested, and every position's edges together, for tests:
/// whether any meet wrongly, found without a sweep.
#[cfg(test)]
pub(super) fn every_pair(rings: &[Vec<Point>]) -> Option<Meeting> {
    let set = Rings::new(rings);
    let e = &set.edges;
    let name = |i: u32| (e[i as usize].ring as usize, e[i as usize].index as usize);
    for i in 0..e.len() {
        for j in i + 1..e.len() {
            if set.wrong(&e[i], &e[j]) {
                return Some((name(i as u32), name(j as u32)));
            }
        }
    }
    let ends: Vec<Point> = e.iter().flat_map(|edge| [edge.lo, edge.hi]).collect();
    for p in ends {
        let at_p: Vec<(u32, bool)> = (0..e.len() as u32)
            .filter(|&i| e[i as usize].lo == p || e[i as usize].hi == p)
            .map(|i| (i, true))
            .collect();
        if let Some((a, b)) = set.wrong_at(p, &at_p) {
            return Some((name(a), name(b)));
        }
    }
    None
}
