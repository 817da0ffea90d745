//! Point-in-polygon for repeated tests: the edges of every ring bucketed by latitude band,
//! so a test reads only the few edges whose latitude range holds the point's.
//!
//! The decision is geo's, edge for edge: the winding number with the same crossing rules and
//! the same robust orientation predicate as `geo::coordinate_position`, and a point on any
//! edge is on the boundary, which counts as inside. An edge that does not span the point's
//! latitude adds nothing to a winding number, so reading only the edges of the point's band
//! gives exactly geo's answer.
//!
//! Written here rather than with geo's prepared forms because a query builds one per request
//! and tests it a few hundred times, and a fence tests it on every update near it. Measured on
//! a 50-vertex polygon and 100,000 random points: `Polygon::intersects` 100 ns a test;
//! `MonotonicPolygons` 57 ns after a 69 µs build; `IntervalTreeMultiPolygon` 64 ns after a
//! 7 µs build but without a boundary answer (`contains` only). Bands answer in about a
//! fifth of `intersects`' time and build in about a microsecond (figures in docs/performance.md).

use geo::{Coord, GeoNum, Intersects, Kernel, Line, Orientation, Rect};

/// The most band entries a build may make, per edge: a tall edge is in every band it spans,
/// so fewer bands are used when edges are tall (memory stays linear in the vertices).
const MAX_ENTRIES_PER_EDGE: usize = 16;

/// One edge of a ring.
#[derive(Debug, Clone, Copy)]
struct Edge {
    start: Coord<f64>,
    end: Coord<f64>,
    ring: u32,
}

/// A ring's place: which polygon it belongs to and whether it is a hole.
#[derive(Debug, Clone, Copy)]
struct Ring {
    polygon: u32,
    hole: bool,
}

/// The edges of a set of polygons, by latitude band.
///
/// Invariants: band `b` lists every edge whose latitude range meets `[y(b), y(b + 1)]`, as
/// [`Bands::band_of`] computes bands for both; within a band, edges are sorted by ring, and
/// rings are numbered polygon by polygon, the exterior first.
#[derive(Debug, Clone)]
pub(super) struct Bands {
    min_y: f64,
    max_y: f64,
    height: f64,
    count: usize,
    /// `entries[offsets[b]..offsets[b + 1]]` are the edges of band `b`.
    offsets: Vec<u32>,
    entries: Vec<u32>,
    edges: Vec<Edge>,
    rings: Vec<Ring>,
}

impl Bands {
    /// Bands over polygons given as rings of `[lon, lat]` positions (closed, the exterior
    /// first). The positions must be finite.
    pub(super) fn new(polygons: &[Vec<Vec<[f64; 2]>>]) -> Self {
        let mut edges = Vec::new();
        let mut rings = Vec::new();
        for (p, polygon) in polygons.iter().enumerate() {
            for (r, ring) in polygon.iter().enumerate() {
                let id = u32::try_from(rings.len()).expect("rings are bounded by the vertex limit");
                rings.push(Ring {
                    polygon: u32::try_from(p).expect("bounded"),
                    hole: r > 0,
                });
                edges.extend(ring.windows(2).map(|w| Edge {
                    start: Coord {
                        x: w[0][0],
                        y: w[0][1],
                    },
                    end: Coord {
                        x: w[1][0],
                        y: w[1][1],
                    },
                    ring: id,
                }));
            }
        }
        let min_y = edges
            .iter()
            .map(|e| e.start.y.min(e.end.y))
            .fold(f64::INFINITY, f64::min);
        let max_y = edges
            .iter()
            .map(|e| e.start.y.max(e.end.y))
            .fold(f64::NEG_INFINITY, f64::max);
        let mut bands = Self {
            min_y,
            max_y,
            height: 0.0,
            count: 1,
            offsets: Vec::new(),
            entries: Vec::new(),
            edges,
            rings,
        };
        let mut count = (bands.edges.len() / 2).clamp(1, 1 << 16);
        loop {
            bands.count = count;
            bands.height = if max_y > min_y {
                (max_y - min_y) / count as f64
            } else {
                1.0
            };
            let total: usize = bands
                .edges
                .iter()
                .map(|e| {
                    let span = bands.span(e);
                    span.end() - span.start() + 1
                })
                .sum();
            if count == 1 || total <= MAX_ENTRIES_PER_EDGE * bands.edges.len() {
                break;
            }
            count /= 2;
        }
        bands.fill();
        bands
    }

    /// The band a latitude falls in: monotone in `y`, so an edge spanning `y` is listed in
    /// its band.
    fn band_of(&self, y: f64) -> usize {
        let band = ((y - self.min_y) / self.height).floor();
        if band <= 0.0 {
            0
        } else {
            (band as usize).min(self.count - 1)
        }
    }

    /// The bands an edge is listed in.
    fn span(&self, e: &Edge) -> std::ops::RangeInclusive<usize> {
        self.band_of(e.start.y.min(e.end.y))..=self.band_of(e.start.y.max(e.end.y))
    }

    /// Lists every edge in the bands it spans, ordered by ring within each band.
    fn fill(&mut self) {
        let mut counts = vec![0u32; self.count + 1];
        for e in &self.edges {
            for b in self.span(e) {
                counts[b + 1] += 1;
            }
        }
        for b in 0..self.count {
            counts[b + 1] += counts[b];
        }
        let mut next = counts.clone();
        let mut entries = vec![0u32; counts[self.count] as usize];
        // Edges are in ring order already, so each band's entries are too.
        for (i, e) in self.edges.iter().enumerate() {
            for b in self.span(e) {
                entries[next[b] as usize] = u32::try_from(i).expect("bounded");
                next[b] += 1;
            }
        }
        self.offsets = counts;
        self.entries = entries;
    }

    /// Whether `(x, y)` is inside a polygon or on the boundary of any ring.
    pub(super) fn contains(&self, x: f64, y: f64) -> bool {
        if !(y >= self.min_y && y <= self.max_y) {
            return false;
        }
        let b = self.band_of(y);
        let band = &self.entries[self.offsets[b] as usize..self.offsets[b + 1] as usize];
        let point = Coord { x, y };
        // Polygon by polygon: inside its exterior and in none of its holes.
        let mut polygon = u32::MAX;
        let mut in_exterior = false;
        let mut in_hole = false;
        let mut at = 0;
        while at < band.len() {
            let ring = self.edges[band[at] as usize].ring;
            let mut winding = 0i32;
            while at < band.len() && self.edges[band[at] as usize].ring == ring {
                match crossing(&self.edges[band[at] as usize], point) {
                    Crossing::Boundary => return true,
                    Crossing::Winding(w) => winding += w,
                }
                at += 1;
            }
            let place = self.rings[ring as usize];
            if place.polygon != polygon {
                if in_exterior && !in_hole {
                    return true;
                }
                polygon = place.polygon;
                in_exterior = false;
                in_hole = false;
            }
            if place.hole {
                in_hole |= winding != 0;
            } else {
                in_exterior = winding != 0;
            }
        }
        in_exterior && !in_hole
    }

    /// Whether any edge meets the closed rectangle `[west, east] × [south, north]` (robust
    /// predicates: never a false "no").
    pub(super) fn meets_rect(&self, west: f64, south: f64, east: f64, north: f64) -> bool {
        if north < self.min_y || south > self.max_y {
            return false;
        }
        let rect = Rect::new(Coord { x: west, y: south }, Coord { x: east, y: north });
        let first = self.band_of(south.max(self.min_y));
        let last = self.band_of(north.min(self.max_y));
        (first..=last).any(|b| {
            self.entries[self.offsets[b] as usize..self.offsets[b + 1] as usize]
                .iter()
                .any(|&i| {
                    let e = &self.edges[i as usize];
                    Line::new(e.start, e.end).intersects(&rect)
                })
        })
    }

    /// Bytes of memory held, for the memory figures.
    pub(super) fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4
            + self.entries.capacity() * 4
            + self.edges.capacity() * size_of::<Edge>()
            + self.rings.capacity() * size_of::<Ring>()
    }
}

/// What one edge says about a point: it lies on the edge, or the edge adds this much to the
/// ring's winding number.
enum Crossing {
    Boundary,
    Winding(i32),
}

/// geo's crossing rules (`coord_pos_relative_to_ring`): an upward edge includes its start and
/// excludes its end, a downward edge the reverse, horizontal edges count only as boundary,
/// and the crossing must be strictly right of the point.
#[inline]
fn crossing(edge: &Edge, point: Coord<f64>) -> Crossing {
    let (start, end) = (edge.start, edge.end);
    let between = |x: f64| x >= start.x.min(end.x) && x <= start.x.max(end.x);
    if start.y <= point.y {
        if end.y >= point.y {
            let o = <f64 as GeoNum>::Ker::orient2d(start, end, point);
            if o == Orientation::CounterClockwise && end.y != point.y {
                return Crossing::Winding(1);
            } else if o == Orientation::Collinear && between(point.x) {
                return Crossing::Boundary;
            }
        }
    } else if end.y <= point.y {
        let o = <f64 as GeoNum>::Ker::orient2d(start, end, point);
        if o == Orientation::Clockwise {
            return Crossing::Winding(-1);
        } else if o == Orientation::Collinear && between(point.x) {
            return Crossing::Boundary;
        }
    }
    Crossing::Winding(0)
}
