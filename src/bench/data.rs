//! Realistic places, deterministic from a seed: points clustered around the world's cities
//! (the bundled GeoNames file), a city's chance proportional to its population, the way a
//! travel app's POIs and travellers are spread.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::geometry::LatLon;

/// A stream of places near cities.
pub struct Places {
    cities: Vec<LatLon>,
    cumulative: Vec<f64>,
    rng: SmallRng,
}

impl Places {
    /// A stream seeded with `seed` over the bundled cities.
    pub fn new(seed: u64) -> Self {
        let parsed = crate::sample::cities().expect("the bundled cities parse (checked by tests)");
        let mut total = 0.0;
        let mut cities = Vec::with_capacity(parsed.pois.len());
        let mut cumulative = Vec::with_capacity(parsed.pois.len());
        for poi in parsed.pois {
            total += poi
                .tags
                .get("population")
                .and_then(|p| p.parse::<f64>().ok())
                .unwrap_or(15_000.0);
            cities.push(poi.position);
            cumulative.push(total);
        }
        Self {
            cities,
            cumulative,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A city, drawn by population.
    pub fn city(&mut self) -> LatLon {
        let total = *self.cumulative.last().expect("at least one city");
        let pick = self.rng.random_range(0.0..total);
        let i = self
            .cumulative
            .partition_point(|c| *c < pick)
            .min(self.cities.len() - 1);
        self.cities[i]
    }

    /// A place within `spread_deg` degrees (in each axis) of a city drawn by population.
    pub fn next(&mut self, spread_deg: f64) -> LatLon {
        let c = self.city();
        self.near(c, spread_deg)
    }

    /// A place within `spread_deg` degrees of `p` (a small step, for moving travellers).
    pub fn near(&mut self, p: LatLon, spread_deg: f64) -> LatLon {
        let lat = (p.lat + self.rng.random_range(-spread_deg..=spread_deg)).clamp(-90.0, 90.0);
        let mut lon = p.lon + self.rng.random_range(-spread_deg..=spread_deg);
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        LatLon::new(lat, lon).expect("clamped and wrapped into range")
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.rng.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_places_near_cities() {
        let a: Vec<LatLon> = {
            let mut p = Places::new(7);
            (0..100).map(|_| p.next(0.1)).collect()
        };
        let mut p = Places::new(7);
        let b: Vec<LatLon> = (0..100).map(|_| p.next(0.1)).collect();
        assert_eq!(a, b);
        let mut other = Places::new(8);
        assert_ne!(a[0], other.next(0.1));
    }
}
