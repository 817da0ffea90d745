//! Realistic places, deterministic from a seed: points clustered around the world's cities
//! (the bundled GeoNames file), the way a travel app's POIs and travellers are spread, in
//! one of two shapes ([`Distribution`]). A figure that holds on one shape only is not yet a
//! result, so the harness and the benches run both.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use proxima_engine::geometry::LatLon;

/// How places are spread around the cities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// A city drawn in proportion to its population, a place uniform within the given
    /// spread of it (`Places::next(spread_deg)`): big cities are very dense.
    #[default]
    Population,
    /// A city drawn in proportion to the square root of its population, a place at a
    /// Gaussian offset of σ = 0.5 + 3·√(population / 10⁶) km in each axis, σ at most 15 km
    /// (the spread argument is not used): denser small towns, sparser megacities.
    SqrtPopulation,
}

impl Distribution {
    /// Both shapes.
    pub const ALL: [Self; 2] = [Self::Population, Self::SqrtPopulation];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Population => "population",
            Self::SqrtPopulation => "sqrt-population",
        }
    }
}

impl std::str::FromStr for Distribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("expected population or sqrt-population, got {s:?}"))
    }
}

/// The cities and their weights under a [`Distribution`]; shared, drawn from with any
/// random number generator.
#[derive(Debug)]
pub struct Cities {
    distribution: Distribution,
    cities: Vec<(LatLon, f64)>,
    cumulative: Vec<f64>,
}

/// Kilometres per degree of latitude.
pub(crate) const KM_PER_DEGREE: f64 = 111.195;

impl Cities {
    /// The bundled cities, weighted by `distribution`.
    pub fn new(distribution: Distribution) -> Self {
        let parsed =
            proxima_engine::sample::cities().expect("the bundled cities parse (checked by tests)");
        let mut total = 0.0;
        let mut cities = Vec::with_capacity(parsed.pois.len());
        let mut cumulative = Vec::with_capacity(parsed.pois.len());
        for poi in parsed.pois {
            let population = poi
                .tags
                .get("population")
                .and_then(|p| p.parse::<f64>().ok())
                .unwrap_or(15_000.0);
            total += match distribution {
                Distribution::Population => population,
                Distribution::SqrtPopulation => population.sqrt(),
            };
            cities.push((poi.position, population));
            cumulative.push(total);
        }
        Self {
            distribution,
            cities,
            cumulative,
        }
    }

    /// A city and its population, drawn by weight.
    pub fn city(&self, rng: &mut impl Rng) -> (LatLon, f64) {
        let total = *self.cumulative.last().expect("at least one city");
        let pick = rng.random_range(0.0..total);
        let i = self
            .cumulative
            .partition_point(|c| *c < pick)
            .min(self.cities.len() - 1);
        self.cities[i]
    }

    /// A place near a city drawn by weight (`spread_deg`: see [`Distribution`]).
    pub fn place(&self, rng: &mut impl Rng, spread_deg: f64) -> LatLon {
        let (c, population) = self.city(rng);
        match self.distribution {
            Distribution::Population => near(rng, c, spread_deg),
            Distribution::SqrtPopulation => {
                let sigma_km = (0.5 + 3.0 * (population / 1e6).sqrt()).min(15.0);
                let north: f64 = rng.sample(StandardNormal);
                let east: f64 = rng.sample(StandardNormal);
                let lat = c.lat + north * sigma_km / KM_PER_DEGREE;
                let lon =
                    c.lon + east * sigma_km / (KM_PER_DEGREE * c.lat.to_radians().cos().max(0.01));
                wrap(lat, lon)
            }
        }
    }
}

/// A place within `spread_deg` degrees (in each axis) of `p`.
fn near(rng: &mut impl Rng, p: LatLon, spread_deg: f64) -> LatLon {
    wrap(
        p.lat + rng.random_range(-spread_deg..=spread_deg),
        p.lon + rng.random_range(-spread_deg..=spread_deg),
    )
}

/// `(lat, lon)` with the latitude clamped and the longitude wrapped into range.
fn wrap(lat: f64, lon: f64) -> LatLon {
    let lon = (lon + 180.0).rem_euclid(360.0) - 180.0;
    LatLon::new(lat.clamp(-90.0, 90.0), lon).expect("clamped and wrapped into range")
}

/// A stream of places near cities.
pub struct Places {
    cities: Arc<Cities>,
    rng: SmallRng,
}

impl Places {
    /// A stream seeded with `seed` over the bundled cities, by population.
    pub fn new(seed: u64) -> Self {
        Self::with_distribution(seed, Distribution::Population)
    }

    /// A stream seeded with `seed` over the bundled cities, spread as `distribution`.
    pub fn with_distribution(seed: u64, distribution: Distribution) -> Self {
        Self::over(Arc::new(Cities::new(distribution)), seed)
    }

    /// A stream seeded with `seed` over `cities`.
    pub fn over(cities: Arc<Cities>, seed: u64) -> Self {
        Self {
            cities,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A city, drawn by weight.
    pub fn city(&mut self) -> LatLon {
        self.cities.city(&mut self.rng).0
    }

    /// A place near a city drawn by weight (`spread_deg`: see [`Distribution`]).
    pub fn next(&mut self, spread_deg: f64) -> LatLon {
        self.cities.place(&mut self.rng, spread_deg)
    }

    /// A place within `spread_deg` degrees of `p` (a small step, for moving travellers).
    pub fn near(&mut self, p: LatLon, spread_deg: f64) -> LatLon {
        near(&mut self.rng, p, spread_deg)
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.rng.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxima_engine::geometry::haversine_m;

    #[test]
    fn the_same_seed_gives_the_same_places_near_cities() {
        for distribution in Distribution::ALL {
            let draw = |seed| {
                let mut p = Places::with_distribution(seed, distribution);
                (0..100).map(|_| p.next(0.1)).collect::<Vec<_>>()
            };
            assert_eq!(draw(7), draw(7));
            assert_ne!(draw(7)[0], draw(8)[0]);
        }
    }

    #[test]
    fn sqrt_population_spreads_by_its_gaussian_and_favours_small_towns_more() {
        let cities = Cities::new(Distribution::SqrtPopulation);
        let mut rng = SmallRng::seed_from_u64(1);
        // The distance from the city, over σ, is Rayleigh distributed: mean √(π/2).
        let n = 20_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let (city, population) = cities.city(&mut rng.clone());
            let place = cities.place(&mut rng, 0.0);
            let sigma_m = (0.5 + 3.0 * (population / 1e6).sqrt()).min(15.0) * 1000.0;
            sum += haversine_m(city, place) / sigma_m;
        }
        let mean = sum / f64::from(n);
        assert!(
            (mean - (std::f64::consts::PI / 2.0).sqrt()).abs() < 0.05,
            "mean {mean}"
        );
        // The biggest cities take far more draws by population than by its square root.
        let share_of_big = |d: Distribution| {
            let cities = Cities::new(d);
            let mut rng = SmallRng::seed_from_u64(3);
            (0..20_000)
                .filter(|_| cities.city(&mut rng).1 >= 5e6)
                .count()
        };
        assert!(
            share_of_big(Distribution::Population) > 2 * share_of_big(Distribution::SqrtPopulation)
        );
    }
}
