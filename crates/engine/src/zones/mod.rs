//! Privacy zones: places (a home, a workplace) where a traveller is seen by nobody but
//! itself. [`PrivacyZones`] owns every traveller's zones; the rule that uses them is one
//! more clause of the one visibility rule ([`crate::travellers::sharing::zone_allows`]),
//! applied wherever a position of a traveller is shown, at the time it is read, so that a
//! zone added later hides what was stored before it too.
//!
//! # The threat, and the shroud
//! A route that starts at home and is cut at the edge of a circle around home shows where
//! the circle is: the visible ends of many trips lie on it, and its centre is home. That
//! is how fitness apps' privacy zones were defeated (Hassan, Hussain and Bates, USENIX
//! Security 2018): a circle fitted through the ends of a few routes gave the home within
//! metres, whatever the zone's radius. Later work (Dhondt et al., CCS 2022) found homes
//! behind randomised zones too, from the street network near the cut ends.
//!
//! So a zone never hides exactly the area given. Each zone gets a [`Shroud`]: a cap that
//! holds the whole zone, whose centre is moved away from the zone's own centre by a
//! secret random distance between [`OFFSET_MIN`] and [`OFFSET_MAX`] times the zone's
//! radius (in a secret random direction), and whose radius reaches a further secret random
//! margin of [`MARGIN_MIN`]–[`MARGIN_MAX`] radii beyond the zone. Every point inside the
//! shroud is hidden, so no visible point is ever the first or last point of a run of
//! hidden ones, and the cut ends lie on the shroud's edge, not the zone's.
//!
//! The secret ([`ShroudSecret`]) is drawn once, when the zone is first made, and kept when
//! the zone is replaced: shrouds drawn afresh for each trip or each edit would average out
//! to the true centre over enough of them. It travels in the log (so replay and every
//! cluster node hide the same points) and is never shown, not even to the traveller.
//!
//! Fitting a circle through the ends then finds the shroud's centre, at least
//! [`OFFSET_MIN`] radii from the zone's. The ends' centroid is pulled from the shroud's
//! centre toward home, where more routes cross the edge: for trips that go somewhere
//! (straight-ish, as on streets) about half the offset, so still more than a radius from
//! home (`zones_tests` checks both estimates, and the ends' box, over 80 trips a zone).
//! What the defence does not hide, and `docs/operating.md` says so: trips that wander (a
//! random walk leaves any region at points whose mean is where it started, whatever the
//! region), an observer who knows this scheme and sees many straight trips (it can read
//! the direction of home from where routes cross the edge), and the streets near the cut
//! ends, which still lead home.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::geometry::area::{Area, Shape};
use crate::geometry::{EARTH_RADIUS_M, LatLon, haversine_m};
use crate::ids::{IdError, validate_id};
use crate::travellers::TravellerId;

/// The most privacy zones a traveller may have.
pub const MAX_ZONES_PER_TRAVELLER: usize = 16;
/// The largest zone: its area must lie within this many metres of its centre (a zone hides
/// a home or a workplace, not a city; its shroud reaches about four times as far).
pub const MAX_ZONE_RADIUS_M: f64 = 10_000.0;
/// The most positions a zone's polygon may have.
pub const MAX_ZONE_VERTICES: usize = 1_000;
/// The smallest radius a zone counts with: a zone smaller than this is shrouded as if it
/// were this large, so that a tiny zone still hides its place among a few hundred metres.
pub const MIN_ZONE_RADIUS_M: f64 = 50.0;
/// The shroud's centre lies between these many radii of the zone from the zone's centre.
pub const OFFSET_MIN: f64 = 2.5;
/// See [`OFFSET_MIN`].
pub const OFFSET_MAX: f64 = 3.0;
/// The shroud reaches this many radii beyond the farthest point of the zone, at least.
pub const MARGIN_MIN: f64 = 0.25;
/// See [`MARGIN_MIN`].
pub const MARGIN_MAX: f64 = 0.5;

/// Why a privacy zone was refused, naming the field. A refused change changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// The zone's id is malformed.
    #[error("zone: {0}")]
    Id(IdError),
    /// The traveller's id is malformed.
    #[error("traveller: {0}")]
    Traveller(IdError),
    /// The area is too large or has too many positions.
    #[error("area: {0}")]
    Area(String),
    /// The traveller has as many zones as it may.
    #[error(
        "privacy zones of a traveller: at most {MAX_ZONES_PER_TRAVELLER} are allowed; delete one first"
    )]
    Limit,
}

/// The secret that places a zone's shroud: three numbers in [0, 1) drawn once, when the
/// zone is first made. Never shown.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShroudSecret {
    /// The direction the shroud's centre is moved, as a fraction of a full turn.
    pub bearing: f64,
    /// Where the offset lies between [`OFFSET_MIN`] and [`OFFSET_MAX`].
    pub offset: f64,
    /// Where the margin lies between [`MARGIN_MIN`] and [`MARGIN_MAX`].
    pub margin: f64,
}

impl ShroudSecret {
    /// A secret drawn from the operating system's randomness.
    pub fn draw() -> Self {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let unit = |b: &[u8]| {
            let n = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            (n >> 11) as f64 / (1u64 << 53) as f64
        };
        Self {
            bearing: unit(&bytes[0..8]),
            offset: unit(&bytes[8..16]),
            margin: unit(&bytes[16..24]),
        }
    }

    fn check(&self) -> bool {
        [self.bearing, self.offset, self.margin]
            .iter()
            .all(|v| v.is_finite() && (0.0..1.0).contains(v))
    }
}

/// The cap a zone actually hides: it holds the whole zone (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shroud {
    centre: LatLon,
    radius_m: f64,
    /// The centre's unit vector and the cosine of the radius's angle, for the test.
    unit: [f64; 3],
    min_dot: f64,
}

impl Shroud {
    /// The shroud of `area` placed by `secret`.
    pub fn new(area: &Area, secret: &ShroudSecret) -> Self {
        let (centre, radius) = enclosing_cap(area);
        let radius = radius.max(MIN_ZONE_RADIUS_M);
        let offset = radius * (OFFSET_MIN + secret.offset * (OFFSET_MAX - OFFSET_MIN));
        let margin = radius * (MARGIN_MIN + secret.margin * (MARGIN_MAX - MARGIN_MIN));
        let moved = destination(centre, secret.bearing * 360.0, offset);
        // The farthest point of the zone from the new centre is at most `offset + radius`
        // away (triangle inequality); a metre more absorbs rounding.
        let radius_m = offset + radius + margin + 1.0;
        Self {
            centre: moved,
            radius_m,
            unit: moved.to_unit(),
            min_dot: (radius_m / EARTH_RADIUS_M).min(std::f64::consts::PI).cos(),
        }
    }

    /// Whether `p` is hidden.
    #[inline]
    pub fn hides(&self, p: LatLon) -> bool {
        let u = p.to_unit();
        u[0] * self.unit[0] + u[1] * self.unit[1] + u[2] * self.unit[2] >= self.min_dot
    }

    /// The shroud's centre (for tests and for the traveller's own map: never shown to
    /// anyone else).
    pub fn centre(&self) -> LatLon {
        self.centre
    }

    /// The shroud's radius, metres.
    pub fn radius_m(&self) -> f64 {
        self.radius_m
    }
}

/// A traveller's shrouds, as the visibility rule reads them. Cheap to share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shrouds(Box<[Shroud]>);

impl Shrouds {
    /// Whether any of them hides `p`.
    #[inline]
    pub fn hide(&self, p: LatLon) -> bool {
        self.0.iter().any(|s| s.hides(p))
    }

    /// Each shroud.
    pub fn iter(&self) -> impl Iterator<Item = &Shroud> {
        self.0.iter()
    }
}

/// One privacy zone: its id, its traveller, the area as given, and its shroud's secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "ZoneFields")]
pub struct PrivacyZone {
    id: String,
    traveller: String,
    area: Area,
    secret: ShroudSecret,
}

/// [`PrivacyZone`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct ZoneFields {
    id: String,
    traveller: String,
    area: Area,
    secret: ShroudSecret,
}

impl TryFrom<ZoneFields> for PrivacyZone {
    type Error = ZoneError;

    fn try_from(f: ZoneFields) -> Result<Self, ZoneError> {
        if !f.secret.check() {
            return Err(ZoneError::Area(
                "the shroud's secret is out of range".into(),
            ));
        }
        Self::new(&f.traveller, &f.id, f.area, f.secret)
    }
}

impl PrivacyZone {
    /// A zone, checked: ids well formed, the area within [`MAX_ZONE_RADIUS_M`] of its
    /// centre and of at most [`MAX_ZONE_VERTICES`] positions.
    pub fn new(
        traveller: &str,
        id: &str,
        area: Area,
        secret: ShroudSecret,
    ) -> Result<Self, ZoneError> {
        validate_id(traveller).map_err(ZoneError::Traveller)?;
        validate_id(id).map_err(ZoneError::Id)?;
        if area.vertices() > MAX_ZONE_VERTICES {
            return Err(ZoneError::Area(format!(
                "a privacy zone may have at most {MAX_ZONE_VERTICES} positions, got {}",
                area.vertices()
            )));
        }
        let (_, radius) = enclosing_cap(&area);
        if radius > MAX_ZONE_RADIUS_M {
            return Err(ZoneError::Area(format!(
                "a privacy zone must lie within {MAX_ZONE_RADIUS_M} m of its centre; this one reaches {radius:.0} m"
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            traveller: traveller.to_owned(),
            area,
            secret,
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its traveller.
    pub fn traveller(&self) -> &str {
        &self.traveller
    }

    /// Its area, as given.
    pub fn area(&self) -> &Area {
        &self.area
    }

    /// Its secret.
    pub fn secret(&self) -> ShroudSecret {
        self.secret
    }

    /// What it hides.
    pub fn shroud(&self) -> Shroud {
        Shroud::new(&self.area, &self.secret)
    }
}

/// Every traveller's privacy zones, with their shrouds worked out once, when the zones
/// change (every route read by someone other than the traveller asks for them).
#[derive(Default)]
pub struct PrivacyZones {
    by_traveller: RwLock<HashMap<TravellerId, Held, foldhash::fast::RandomState>>,
}

/// One traveller's zones, by id, and their shrouds.
#[derive(Default)]
struct Held {
    zones: Vec<PrivacyZone>,
    shrouds: Arc<Shrouds>,
}

impl Held {
    /// Works the shrouds out again after a change to the zones.
    fn changed(&mut self) -> Arc<Shrouds> {
        self.shrouds = Arc::new(Shrouds(
            self.zones.iter().map(PrivacyZone::shroud).collect(),
        ));
        self.shrouds.clone()
    }
}

impl PrivacyZones {
    /// Whether `zone` may be put: the traveller has room for it (a replacement always
    /// has).
    pub fn check_put(&self, zone: &PrivacyZone) -> Result<(), ZoneError> {
        let zones = self.by_traveller.read();
        let held = zones
            .get(zone.traveller())
            .map_or(&[][..], |h| h.zones.as_slice());
        if held.len() >= MAX_ZONES_PER_TRAVELLER && !held.iter().any(|z| z.id == zone.id) {
            return Err(ZoneError::Limit);
        }
        Ok(())
    }

    /// Puts `zone` (replacing the traveller's zone of that id); gives the traveller's
    /// shrouds now, and whether the zone was new.
    pub fn put(&self, zone: PrivacyZone) -> (Arc<Shrouds>, bool) {
        let mut zones = self.by_traveller.write();
        let held = zones.entry(zone.traveller().into()).or_default();
        let created = match held
            .zones
            .binary_search_by(|z| z.id.as_str().cmp(zone.id()))
        {
            Ok(i) => {
                held.zones[i] = zone;
                false
            }
            Err(i) => {
                held.zones.insert(i, zone);
                true
            }
        };
        (held.changed(), created)
    }

    /// Removes `traveller`'s zone `id`; gives its shrouds now (`None`: it has none left),
    /// and whether the zone existed.
    pub fn remove(&self, traveller: &str, id: &str) -> (Option<Arc<Shrouds>>, bool) {
        let mut zones = self.by_traveller.write();
        let Some(held) = zones.get_mut(traveller) else {
            return (None, false);
        };
        let existed = match held.zones.binary_search_by(|z| z.id.as_str().cmp(id)) {
            Ok(i) => {
                held.zones.remove(i);
                true
            }
            Err(_) => false,
        };
        if held.zones.is_empty() {
            zones.remove(traveller);
            return (None, existed);
        }
        (Some(held.changed()), existed)
    }

    /// Forgets every zone of `traveller`; gives how many there were.
    pub fn remove_all(&self, traveller: &str) -> usize {
        self.by_traveller
            .write()
            .remove(traveller)
            .map_or(0, |h| h.zones.len())
    }

    /// `traveller`'s zones, by id.
    pub fn of_traveller(&self, traveller: &str) -> Vec<PrivacyZone> {
        self.by_traveller
            .read()
            .get(traveller)
            .map(|h| h.zones.clone())
            .unwrap_or_default()
    }

    /// `traveller`'s zone `id`.
    pub fn get(&self, traveller: &str, id: &str) -> Option<PrivacyZone> {
        self.by_traveller
            .read()
            .get(traveller)?
            .zones
            .iter()
            .find(|z| z.id == id)
            .cloned()
    }

    /// `traveller`'s shrouds, if it has zones.
    pub fn shrouds(&self, traveller: &str) -> Option<Arc<Shrouds>> {
        self.by_traveller
            .read()
            .get(traveller)
            .map(|h| h.shrouds.clone())
    }

    /// Every zone, traveller by traveller (for a snapshot).
    pub fn export(&self) -> Vec<PrivacyZone> {
        let zones = self.by_traveller.read();
        let mut all: Vec<PrivacyZone> = zones.values().flat_map(|h| h.zones.clone()).collect();
        all.sort_unstable_by(|a, b| (&a.traveller, &a.id).cmp(&(&b.traveller, &b.id)));
        all
    }

    /// How many zones there are.
    pub fn len(&self) -> usize {
        self.by_traveller
            .read()
            .values()
            .map(|h| h.zones.len())
            .sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_traveller.read().is_empty()
    }

    /// Forgets every zone.
    pub fn clear(&self) {
        self.by_traveller.write().clear();
    }
}

/// A cap holding all of `area`: its centre and radius in metres. A circle is its own; a
/// polygon's is centred on its bounding boxes, through the farthest of points sampled
/// densely along their edges (a box's farthest point from a centre inside it lies on its
/// edge), with one percent to spare for the gaps between samples.
pub fn enclosing_cap(area: &Area) -> (LatLon, f64) {
    if let Shape::Circle { center, radius_m } = area.shape() {
        return (*center, *radius_m);
    }
    const SAMPLES: usize = 32;
    let mut samples: Vec<LatLon> = Vec::new();
    for b in area.bounds() {
        let (w, s, e, n) = (b.min_lon, b.min_lat, b.max_lon, b.max_lat);
        for i in 0..=SAMPLES {
            let t = i as f64 / SAMPLES as f64;
            let lon = w + (e - w) * t;
            let lat = s + (n - s) * t;
            samples.extend([
                LatLon { lat: s, lon },
                LatLon { lat: n, lon },
                LatLon { lat, lon: w },
                LatLon { lat, lon: e },
            ]);
        }
    }
    let mut sum = [0.0f64; 3];
    for p in &samples {
        let u = p.to_unit();
        sum = [sum[0] + u[0], sum[1] + u[1], sum[2] + u[2]];
    }
    let norm = (sum[0] * sum[0] + sum[1] * sum[1] + sum[2] * sum[2]).sqrt();
    let centre = if norm > 0.0 {
        LatLon {
            lat: (sum[2] / norm).clamp(-1.0, 1.0).asin().to_degrees(),
            lon: sum[1].atan2(sum[0]).to_degrees(),
        }
    } else {
        samples.first().copied().unwrap_or_default()
    };
    let radius = samples
        .iter()
        .map(|p| haversine_m(centre, *p))
        .fold(0.0, f64::max);
    (centre, radius * 1.01 + 1.0)
}

/// The point `distance_m` from `from` along the great circle leaving it at `bearing_deg`
/// (clockwise from north).
pub fn destination(from: LatLon, bearing_deg: f64, distance_m: f64) -> LatLon {
    let delta = distance_m / EARTH_RADIUS_M;
    let theta = bearing_deg.to_radians();
    let phi1 = from.lat.to_radians();
    let lambda1 = from.lon.to_radians();
    let sin_phi2 = phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos();
    let phi2 = sin_phi2.clamp(-1.0, 1.0).asin();
    let lambda2 = lambda1
        + (theta.sin() * delta.sin() * phi1.cos()).atan2(delta.cos() - phi1.sin() * sin_phi2);
    let lon = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    LatLon {
        lat: phi2.to_degrees().clamp(-90.0, 90.0),
        lon: lon.clamp(-180.0, 180.0),
    }
}
