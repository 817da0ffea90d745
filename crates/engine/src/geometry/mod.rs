//! Coordinates and the sphere: validation, great-circle distance, unit vectors and the
//! conversions between chord length and distance that let an R-tree over 3-D points answer
//! great-circle questions exactly.
//!
//! Everything here is a pure function over plain numbers: no state, no allocation.
//! Geohash cells live in [`geohash`].
//!
//! # Why unit vectors
//! A point on the sphere is stored as its unit vector `(x, y, z)`. The straight-line (chord)
//! distance between two unit vectors is `c = 2 sin(θ / 2)` for central angle `θ`, which grows
//! monotonically with `θ` on `[0, π]`: chord order *is* great-circle order, and the 3-D space
//! has no seam at the antimeridian and no singularity at the poles. An R-tree over these points
//! therefore yields candidates in the right order everywhere on Earth; the exact answer is then
//! decided by [`haversine_m`] on the original degrees, the same function a brute-force oracle
//! uses, so results are identical to the oracle's, ties included.

pub mod area;
pub mod geohash;

/// Mean Earth radius in metres (IUGG), the radius every distance in Proxima is measured on.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The largest radius a query may ask for: half the WGS84 equatorial circumference. It is a
/// little more than the greatest possible great-circle distance on our sphere (π R), so a
/// query at this radius covers the whole Earth.
pub const MAX_RADIUS_M: f64 = 20_037_509.0;

/// A validated WGS84 position in degrees.
///
/// Invariant: `lat` is in `[-90, 90]`, `lon` in `[-180, 180]`, both finite. Deserializing
/// checks it too, so a record read back from disk holds it as one from the network does.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "LatLonFields")]
pub struct LatLon {
    /// Latitude in degrees, `[-90, 90]`.
    pub lat: f64,
    /// Longitude in degrees, `[-180, 180]`.
    pub lon: f64,
}

/// Why a coordinate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoordError {
    /// Latitude outside `[-90, 90]` or not a finite number.
    #[error("lat must be a finite number in [-90, 90], got {0}")]
    Lat(f64),
    /// Longitude outside `[-180, 180]` or not a finite number.
    #[error("lon must be a finite number in [-180, 180], got {0}")]
    Lon(f64),
}

/// [`LatLon`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct LatLonFields {
    lat: f64,
    lon: f64,
}

impl TryFrom<LatLonFields> for LatLon {
    type Error = CoordError;

    fn try_from(fields: LatLonFields) -> Result<Self, CoordError> {
        Self::new(fields.lat, fields.lon)
    }
}

impl LatLon {
    /// Validates a latitude/longitude pair in degrees.
    pub fn new(lat: f64, lon: f64) -> Result<Self, CoordError> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(CoordError::Lat(lat));
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(CoordError::Lon(lon));
        }
        Ok(Self { lat, lon })
    }

    /// The point's unit vector: `x` towards (0°, 0°), `y` towards (0°, 90°E), `z` to the
    /// north pole.
    #[inline]
    pub fn to_unit(self) -> [f64; 3] {
        let sin_lat = self.lat.to_radians().sin();
        let cos_lat = cos_lat(self.lat);
        let (sin_lon, cos_lon) = self.lon.to_radians().sin_cos();
        [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
    }
}

/// `cos(lat)` for a latitude in degrees, exactly 0 at the poles.
///
/// `cos(90f64.to_radians())` is `6.1e-17`, not 0, which would put two spellings of the pole
/// (`90, 0` and `90, 120`) a nanometre apart, so a zero radius at the pole would miss them.
/// `sin(90° - |lat|)` is the same function, exact at the poles and better conditioned near them.
#[inline]
pub fn cos_lat(lat: f64) -> f64 {
    (90.0 - lat.abs()).to_radians().sin()
}

/// Great-circle distance in metres between two positions (haversine formula, radius
/// [`EARTH_RADIUS_M`]). Well-conditioned for small distances, which is where users look.
#[inline]
pub fn haversine_m(a: LatLon, b: LatLon) -> f64 {
    HaversineFrom::new(a).to(b)
}

/// [`haversine_m`] from one fixed place to many, without recomputing the fixed place's
/// cosine each time (`haversine_m` is this, once).
#[derive(Debug, Clone, Copy)]
pub struct HaversineFrom {
    from: LatLon,
    phi: f64,
    cos: f64,
}

impl HaversineFrom {
    /// Distances from `from`.
    pub fn new(from: LatLon) -> Self {
        Self {
            from,
            phi: from.lat.to_radians(),
            cos: cos_lat(from.lat),
        }
    }

    /// The great-circle distance from the fixed place to `b`, metres: `haversine_m(from, b)`.
    #[inline]
    pub fn to(&self, b: LatLon) -> f64 {
        let phi2 = b.lat.to_radians();
        let half_dphi = (phi2 - self.phi) * 0.5;
        let half_dlambda = (b.lon - self.from.lon).to_radians() * 0.5;
        let s1 = half_dphi.sin();
        let s2 = half_dlambda.sin();
        let h = s1 * s1 + self.cos * cos_lat(b.lat) * s2 * s2;
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }
}

/// The chord between unit vectors `distance_m` apart on the sphere (at most the
/// diameter, 2).
#[inline]
pub fn chord_of(distance_m: f64) -> f64 {
    let theta = (distance_m / EARTH_RADIUS_M).clamp(0.0, std::f64::consts::PI);
    2.0 * (theta * 0.5).sin()
}

/// Squared chord length between unit vectors whose great-circle distance is `distance_m`,
/// widened by a tolerance that covers the rounding of both the chord (computed from unit
/// vectors) and the haversine (computed from degrees).
///
/// Use it as a search bound: every point whose haversine distance is `<= distance_m` has a
/// computed squared chord `<=` the returned value. The tolerance is relative `1e-9` plus an
/// absolute `1e-18` (a few millimetres), which admits a few extra candidates that the exact
/// haversine check then drops; near the antipode, where `asin` is ill-conditioned, the relative
/// term still dominates the rounding by orders of magnitude.
#[inline]
pub fn chord2_bound(distance_m: f64) -> f64 {
    if distance_m.is_infinite() {
        return f64::INFINITY;
    }
    let chord = chord_of(distance_m);
    chord * chord * (1.0 + 1e-9) + 1e-18
}

/// Squared Euclidean distance between two 3-D points.
#[inline]
pub fn dist2(a: [f64; 3], b: [f64; 3]) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    let dz = a[2] - b[2];
    dx * dx + dy * dy + dz * dz
}

/// A longitude/latitude box, inclusive on every side. `min_lon > max_lon` means the box
/// crosses the antimeridian (it covers `[min_lon, 180]` and `[-180, max_lon]`).
///
/// Invariant: corners are valid coordinates and `min_lat <= max_lat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Western edge in degrees.
    pub min_lon: f64,
    /// Southern edge in degrees.
    pub min_lat: f64,
    /// Eastern edge in degrees.
    pub max_lon: f64,
    /// Northern edge in degrees.
    pub max_lat: f64,
}

/// Why a bounding box was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BBoxError {
    /// A corner is not a valid coordinate.
    #[error("{0}")]
    Corner(#[from] CoordError),
    /// The southern edge lies north of the northern edge.
    #[error("minLat ({min_lat}) must not be greater than maxLat ({max_lat})")]
    LatOrder {
        /// The southern edge given.
        min_lat: f64,
        /// The northern edge given.
        max_lat: f64,
    },
}

impl BBox {
    /// Validates a box given as `minLon, minLat, maxLon, maxLat`.
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<Self, BBoxError> {
        LatLon::new(min_lat, min_lon)?;
        LatLon::new(max_lat, max_lon)?;
        if min_lat > max_lat {
            return Err(BBoxError::LatOrder { min_lat, max_lat });
        }
        Ok(Self {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// Whether the box crosses the antimeridian.
    pub fn crosses_antimeridian(&self) -> bool {
        self.min_lon > self.max_lon
    }

    /// Whether the box contains the point, as a place on Earth rather than as a pair of
    /// numbers: longitudes -180 and 180 are the same meridian, and a pole is inside every box
    /// that reaches it, whatever the longitude it was written with.
    pub fn contains(&self, p: LatLon) -> bool {
        if p.lat < self.min_lat || p.lat > self.max_lat {
            return false;
        }
        if p.lat.abs() == 90.0 {
            return true;
        }
        self.contains_lon(p.lon)
            || (p.lon == -180.0 && self.contains_lon(180.0))
            || (p.lon == 180.0 && self.contains_lon(-180.0))
    }

    fn contains_lon(&self, lon: f64) -> bool {
        if self.crosses_antimeridian() {
            lon >= self.min_lon || lon <= self.max_lon
        } else {
            lon >= self.min_lon && lon <= self.max_lon
        }
    }

    /// Axis-aligned 3-D envelopes (min corner, max corner) that together contain the unit
    /// vector of every point in the box: one, or two when the box crosses the antimeridian.
    pub fn unit_envelopes(&self) -> impl Iterator<Item = ([f64; 3], [f64; 3])> {
        let first = if self.crosses_antimeridian() {
            (self.min_lon, 180.0)
        } else {
            (self.min_lon, self.max_lon)
        };
        let second = self
            .crosses_antimeridian()
            .then_some((-180.0, self.max_lon));
        std::iter::once(first)
            .chain(second)
            .map(move |(w, e)| lon_lat_envelope(w, e, self.min_lat, self.max_lat))
    }
}

/// The latitude range and longitude ranges (one, or two across the antimeridian) that contain
/// every point within `radius_m` of `center`: the spherical cap's bounding box. Widened slightly
/// so rounding cannot leave a point of the cap outside.
pub fn cap_bounds(center: LatLon, radius_m: f64) -> (f64, f64, Vec<(f64, f64)>) {
    let delta = (radius_m / EARTH_RADIUS_M) * (1.0 + 1e-9) + 1e-12;
    let delta_deg = delta.to_degrees();
    let south = center.lat - delta_deg;
    let north = center.lat + delta_deg;
    if delta >= std::f64::consts::PI || south <= -90.0 || north >= 90.0 {
        // The cap holds a pole (or everything): every longitude.
        return (south.max(-90.0), north.min(90.0), vec![(-180.0, 180.0)]);
    }
    // Widest longitude reach of a cap (Matuschek): asin(sin δ / cos φ).
    let reach = (delta.sin() / cos_lat(center.lat))
        .min(1.0)
        .asin()
        .to_degrees()
        * (1.0 + 1e-9)
        + 1e-9;
    let west = center.lon - reach;
    let east = center.lon + reach;
    let lons = if east - west >= 360.0 {
        vec![(-180.0, 180.0)]
    } else if west < -180.0 {
        vec![(west + 360.0, 180.0), (-180.0, east)]
    } else if east > 180.0 {
        vec![(west, 180.0), (-180.0, east - 360.0)]
    } else {
        vec![(west, east)]
    };
    (south, north, lons)
}

/// Squared chord from a unit vector to the nearest point of a 3-D envelope: a lower bound of
/// the squared chord to any point inside it.
#[inline]
pub fn chord2_to_envelope(q: [f64; 3], (lo, hi): ([f64; 3], [f64; 3])) -> f64 {
    let mut sum = 0.0;
    for k in 0..3 {
        let d = if q[k] < lo[k] {
            lo[k] - q[k]
        } else if q[k] > hi[k] {
            q[k] - hi[k]
        } else {
            0.0
        };
        sum += d * d;
    }
    sum
}

/// A conservative 3-D envelope of the unit vectors of the box `[w, e] × [s, n]` (`w <= e`).
///
/// With `r = cos(lat)` and `x = r cos(lon)`, `y = r sin(lon)`, `z = sin(lat)`: `z` is monotone
/// in latitude; `r` ranges over `[r_min, r_max]` (1 if the equator is inside); `cos(lon)` and
/// `sin(lon)` range over their values at the edges plus any extreme (0°, ±90°, ±180°) inside
/// `[w, e]`. `x` and `y` are bilinear in `r` and the trigonometric factor, so their extremes are
/// at the products of the range ends. A small margin absorbs rounding.
pub(crate) fn lon_lat_envelope(w: f64, e: f64, s: f64, n: f64) -> ([f64; 3], [f64; 3]) {
    const MARGIN: f64 = 1e-12;
    let (sin_s, cos_s) = (s.to_radians().sin(), cos_lat(s));
    let (sin_n, cos_n) = (n.to_radians().sin(), cos_lat(n));
    let r_min = cos_s.min(cos_n).max(0.0);
    let r_max = if s <= 0.0 && n >= 0.0 {
        1.0
    } else {
        cos_s.max(cos_n)
    };

    let (sin_w, cos_w) = w.to_radians().sin_cos();
    let (sin_e, cos_e) = e.to_radians().sin_cos();
    let mut cos_lo = cos_w.min(cos_e);
    let mut cos_hi = cos_w.max(cos_e);
    let mut sin_lo = sin_w.min(sin_e);
    let mut sin_hi = sin_w.max(sin_e);
    if w <= 0.0 && e >= 0.0 {
        cos_hi = 1.0;
    }
    if w <= -180.0 || e >= 180.0 {
        cos_lo = -1.0;
    }
    if w <= 90.0 && e >= 90.0 {
        sin_hi = 1.0;
    }
    if w <= -90.0 && e >= -90.0 {
        sin_lo = -1.0;
    }
    let span = |lo: f64, hi: f64| {
        let products = [r_min * lo, r_min * hi, r_max * lo, r_max * hi];
        let min = products.iter().copied().fold(f64::INFINITY, f64::min);
        let max = products.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min - MARGIN, max + MARGIN)
    };
    let (x_lo, x_hi) = span(cos_lo, cos_hi);
    let (y_lo, y_hi) = span(sin_lo, sin_hi);
    ([x_lo, y_lo, sin_s - MARGIN], [x_hi, y_hi, sin_n + MARGIN])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).expect("valid test coordinate")
    }

    #[test]
    fn rejects_out_of_range_and_non_finite_coordinates() {
        assert!(matches!(LatLon::new(90.0001, 0.0), Err(CoordError::Lat(_))));
        assert!(matches!(
            LatLon::new(f64::NAN, 0.0),
            Err(CoordError::Lat(_))
        ));
        assert!(matches!(LatLon::new(0.0, -180.5), Err(CoordError::Lon(_))));
        assert!(matches!(
            LatLon::new(0.0, f64::INFINITY),
            Err(CoordError::Lon(_))
        ));
        assert!(LatLon::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of longitude on the equator: R * π / 180.
        let d = haversine_m(ll(0.0, 0.0), ll(0.0, 1.0));
        assert!((d - EARTH_RADIUS_M * std::f64::consts::PI / 180.0).abs() < 1e-6);
        // Across the antimeridian the short way round.
        let d = haversine_m(ll(0.0, 179.5), ll(0.0, -179.5));
        assert!((d - EARTH_RADIUS_M * std::f64::consts::PI / 180.0).abs() < 1e-6);
        // Pole to pole is half the circumference; all longitudes at a pole are one point.
        let d = haversine_m(ll(90.0, 10.0), ll(-90.0, -100.0));
        assert!((d - EARTH_RADIUS_M * std::f64::consts::PI).abs() < 1e-6);
        assert_eq!(haversine_m(ll(90.0, 10.0), ll(90.0, -170.0)), 0.0);
        assert_eq!(ll(-90.0, 33.0).to_unit(), ll(-90.0, -120.0).to_unit());
    }

    #[test]
    fn chord_bound_covers_the_haversine_distance() {
        let pairs = [
            (ll(60.17, 24.94), ll(60.171, 24.941)),
            (ll(0.0, 179.9999), ll(0.0, -179.9999)),
            (ll(89.9999, 0.0), ll(89.9999, 180.0)),
            (ll(10.0, 20.0), ll(-10.0, -160.0)),
            (ll(0.0, 0.0), ll(0.0, 0.0)),
        ];
        for (a, b) in pairs {
            let d = haversine_m(a, b);
            assert!(
                dist2(a.to_unit(), b.to_unit()) <= chord2_bound(d),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn bbox_contains_treats_both_antimeridian_longitudes_and_poles_as_places() {
        let east = BBox::new(170.0, -10.0, 180.0, 10.0).expect("valid box");
        assert!(east.contains(ll(0.0, -180.0)));
        let crossing = BBox::new(170.0, -10.0, -170.0, 10.0).expect("valid box");
        assert!(crossing.contains(ll(0.0, 175.0)));
        assert!(crossing.contains(ll(0.0, -175.0)));
        assert!(!crossing.contains(ll(0.0, 0.0)));
        let polar = BBox::new(0.0, 80.0, 10.0, 90.0).expect("valid box");
        assert!(polar.contains(ll(90.0, 123.0)));
        assert!(!polar.contains(ll(85.0, 123.0)));
    }

    #[test]
    fn bbox_envelopes_contain_every_point_of_the_box() {
        let boxes = [
            BBox::new(-10.0, -5.0, 10.0, 5.0),
            BBox::new(170.0, 60.0, -170.0, 90.0),
            BBox::new(-180.0, -90.0, 180.0, 90.0),
            BBox::new(95.0, -80.0, 100.0, -70.0),
        ];
        for b in boxes {
            let b = b.expect("valid box");
            for i in 0..=20 {
                for j in 0..=20 {
                    let lat = b.min_lat + (b.max_lat - b.min_lat) * f64::from(i) / 20.0;
                    let width = if b.crosses_antimeridian() {
                        360.0 - (b.min_lon - b.max_lon)
                    } else {
                        b.max_lon - b.min_lon
                    };
                    let mut lon = b.min_lon + width * f64::from(j) / 20.0;
                    if lon > 180.0 {
                        lon -= 360.0;
                    }
                    let p = ll(lat, lon).to_unit();
                    let inside = b
                        .unit_envelopes()
                        .any(|(lo, hi)| (0..3).all(|k| p[k] >= lo[k] && p[k] <= hi[k]));
                    assert!(inside, "box {b:?} misses ({lat}, {lon})");
                }
            }
        }
    }
}
