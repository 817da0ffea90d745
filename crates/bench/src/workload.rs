//! The workloads and the requests they send.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use bytes::Bytes;
use hyper::Method;
use rand::Rng;
use rand::rngs::SmallRng;

use super::data::KM_PER_DEGREE;
use super::http::Call;
use proxima_engine::geometry::LatLon;

/// Metres per degree of latitude.
const M_PER_DEGREE: f64 = KM_PER_DEGREE * 1_000.0;

/// What a benchmark run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `GET /v1/pois/nearby` with a radius and k.
    NearbyPois,
    /// `GET /v1/pois/within` a box around a query point.
    WithinPois,
    /// `GET /v1/travellers/nearby`.
    NearbyTravellers,
    /// `POST /v1/positions`, NDJSON batches of `--batch` updates.
    Positions,
    /// `PUT /v1/travellers/{id}/position`, one update a request.
    Position,
    /// 90 % single position updates, 10 % nearby-traveller queries.
    Mixed,
    /// `GET /healthz`: the HTTP ceiling of the server itself.
    Healthz,
    /// `positions`, with `--fences` static fences around city centres and subscribers on
    /// their events.
    Fences,
    /// `positions`, with a 500 m roaming fence around every tenth traveller among the nine
    /// after it, who share with it, and subscribers on their events.
    Roaming,
    /// `positions` with the batches of `trips` (one report in twenty late, each batch
    /// shuffled) and no trip: the baseline that `trips` is measured against.
    LatePositions,
    /// `positions` with every traveller on a trip (every point joins a route on disk), one
    /// report in twenty late (up to a minute before the traveller's newest), each batch
    /// shuffled, and follower streams open.
    Trips,
    /// Route reads of the trips: in turn a page of the whole route, the route simplified to
    /// 20 m, and the route as GPX.
    Routes,
    /// `positions`, with ten privacy zones around every traveller (one where it starts, so
    /// that most of its reports fall in a zone), put before the first run that needs them
    /// and kept to the end.
    Zones,
}

/// Every workload, in the order a full run takes them.
pub const ALL: [Workload; 13] = [
    Workload::Healthz,
    Workload::NearbyPois,
    Workload::WithinPois,
    Workload::NearbyTravellers,
    Workload::Position,
    Workload::Positions,
    Workload::Mixed,
    Workload::Fences,
    Workload::Roaming,
    Workload::LatePositions,
    Workload::Trips,
    Workload::Routes,
    Workload::Zones,
];

impl Workload {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::NearbyPois => "nearby-pois",
            Self::WithinPois => "within-pois",
            Self::NearbyTravellers => "nearby-travellers",
            Self::Positions => "positions",
            Self::Position => "position",
            Self::Mixed => "mixed",
            Self::Healthz => "healthz",
            Self::Fences => "fences",
            Self::Roaming => "roaming",
            Self::LatePositions => "late-positions",
            Self::Trips => "trips",
            Self::Routes => "routes",
            Self::Zones => "zones",
        }
    }

    /// Whether it sends position batches (and so reports updates per second).
    pub fn sends_batches(self) -> bool {
        matches!(
            self,
            Self::Positions
                | Self::Fences
                | Self::Roaming
                | Self::LatePositions
                | Self::Trips
                | Self::Zones
        )
    }

    /// Whether it runs with privacy zones around every traveller.
    pub fn has_zones(self) -> bool {
        self == Self::Zones
    }

    /// Whether it runs with every traveller on a trip.
    pub fn has_trips(self) -> bool {
        matches!(self, Self::Trips | Self::Routes)
    }

    /// Whether it runs with fences put and subscribers following them.
    pub fn has_fences(self) -> bool {
        matches!(self, Self::Fences | Self::Roaming)
    }
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.into_iter().find(|w| w.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|w| w.name()).collect();
            format!("unknown workload {s:?}; workloads: {}", names.join(", "))
        })
    }
}

/// One report in this many is late in the `trips` workload.
const LATE_EVERY: u32 = 20;

/// How far query points lie from their city with the `population` distribution (the
/// other draws its own spread).
pub const QUERY_SPREAD_DEG: f64 = 0.05;

/// Everything the workers share: query points, traveller start positions, parameters.
pub struct Scenario {
    /// Fixed places near cities: where fences go, and the query points with `--centre`.
    pub centres: Vec<LatLon>,
    /// Where query points are drawn from, afresh for each query (so that a run does not
    /// warm the cache on a fixed set); `None`: from `centres`.
    pub drawn: Option<std::sync::Arc<crate::data::Cities>>,
    /// The `fields=` of nearby POI queries (Proxima only), if any.
    pub fields: Option<String>,
    /// Where each traveller `bench:t:<i>` starts.
    pub travellers: Vec<LatLon>,
    /// Query radius, metres.
    pub radius_m: f64,
    /// Results asked for.
    pub k: usize,
    /// Updates per batch for `positions`.
    pub batch: usize,
    /// Whether travellers walk from their start ([`Scenario::moved`]).
    pub walk: bool,
    /// Each traveller's newest timestamp sent, so that its next is newer.
    last_ts: Box<[AtomicI64]>,
    /// Each traveller's reports so far, for walks.
    steps: Box<[AtomicU32]>,
}

/// Whether a request is a query or an update (the mixed workload reports queries apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read.
    Query,
    /// A write.
    Update,
}

impl Scenario {
    /// A scenario over these query centres and traveller start positions.
    pub fn new(
        centres: Vec<LatLon>,
        travellers: Vec<LatLon>,
        radius_m: f64,
        k: usize,
        batch: usize,
    ) -> Self {
        let last_ts = travellers.iter().map(|_| AtomicI64::new(0)).collect();
        let steps = travellers.iter().map(|_| AtomicU32::new(0)).collect();
        Self {
            centres,
            drawn: None,
            fields: None,
            travellers,
            radius_m,
            k,
            batch,
            walk: false,
            last_ts,
            steps,
        }
    }

    /// The timestamp of traveller `i`'s next report: the wall clock, as a phone's would be,
    /// but at least a millisecond after its last, so every update is newer than the one
    /// before (and than any an earlier run sent, unless the clock went back).
    pub fn ts_for(&self, i: usize) -> i64 {
        let now = proxima_engine::clock::Clock::now_ms(&proxima_engine::clock::SystemClock);
        let last = &self.last_ts[i];
        let mut prev = last.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match last.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => prev = seen,
            }
        }
    }

    fn centre(&self, rng: &mut SmallRng) -> LatLon {
        match &self.drawn {
            Some(cities) => cities.place(rng, QUERY_SPREAD_DEG),
            None => self.centres[rng.random_range(0..self.centres.len())],
        }
    }

    /// A traveller and a position a small step (up to ~100 m) from where it started; or,
    /// walking, its next point on a path from there: 7 m a report in its own direction,
    /// weaving 30 m either side, with 2 m of noise.
    fn moved(&self, rng: &mut SmallRng) -> (usize, f64, f64) {
        let i = rng.random_range(0..self.travellers.len());
        let p = self.travellers[i];
        if self.walk {
            let k = f64::from(self.steps[i].fetch_add(1, Ordering::Relaxed));
            let heading = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as f64 / u64::MAX as f64
                * std::f64::consts::TAU;
            let (along, aside) = (7.0 * k, 30.0 * (k / 25.0).sin());
            let north = along * heading.cos() - aside * heading.sin() + rng.random_range(-2.0..2.0);
            let east = along * heading.sin() + aside * heading.cos() + rng.random_range(-2.0..2.0);
            let lat = (p.lat + north / M_PER_DEGREE).clamp(-89.9, 89.9);
            let lon = p.lon + east / (M_PER_DEGREE * lat.to_radians().cos());
            let lon = (lon + 180.0).rem_euclid(360.0) - 180.0;
            return (i, lat, lon);
        }
        let lat = (p.lat + rng.random_range(-0.001..0.001)).clamp(-90.0, 90.0);
        let lon = (p.lon + rng.random_range(-0.001..0.001)).clamp(-180.0, 180.0);
        (i, lat, lon)
    }

    /// The next operation of `workload`, and how many updates it carries.
    pub fn next(&self, workload: Workload, rng: &mut SmallRng) -> (Kind, Op, u64) {
        match workload {
            Workload::Healthz => (Kind::Query, Op::Health, 0),
            Workload::NearbyPois => (Kind::Query, Op::NearbyPois(self.centre(rng)), 0),
            Workload::WithinPois => (Kind::Query, Op::WithinPois(self.centre(rng)), 0),
            Workload::NearbyTravellers => (Kind::Query, Op::NearbyTravellers(self.centre(rng)), 0),
            Workload::Position => {
                let (i, lat, lon) = self.moved(rng);
                (
                    Kind::Update,
                    Op::Position(Move {
                        traveller: i,
                        lat,
                        lon,
                        ts: self.ts_for(i),
                    }),
                    1,
                )
            }
            Workload::LatePositions | Workload::Trips => {
                let mut moves: Vec<Move> = (0..self.batch)
                    .map(|_| {
                        let (i, lat, lon) = self.moved(rng);
                        let ts = if rng.random_range(0..LATE_EVERY) == 0 {
                            // Late: buffered by a phone offline, sent after newer ones.
                            self.last_ts[i].load(Ordering::Relaxed) - rng.random_range(1..60_000)
                        } else {
                            self.ts_for(i)
                        };
                        Move {
                            traveller: i,
                            lat,
                            lon,
                            ts,
                        }
                    })
                    .collect();
                for k in (1..moves.len()).rev() {
                    moves.swap(k, rng.random_range(0..=k));
                }
                (Kind::Update, Op::Positions(moves), self.batch as u64)
            }
            Workload::Routes => {
                let trip = rng.random_range(0..self.travellers.len());
                let variant = rng.random_range(0..3);
                (Kind::Query, Op::Route { trip, variant }, 0)
            }
            Workload::Positions | Workload::Fences | Workload::Roaming | Workload::Zones => {
                let moves = (0..self.batch)
                    .map(|_| {
                        let (i, lat, lon) = self.moved(rng);
                        Move {
                            traveller: i,
                            lat,
                            lon,
                            ts: self.ts_for(i),
                        }
                    })
                    .collect();
                (Kind::Update, Op::Positions(moves), self.batch as u64)
            }
            Workload::Mixed => {
                if rng.random_range(0..10) == 0 {
                    (Kind::Query, Op::NearbyTravellers(self.centre(rng)), 0)
                } else {
                    self.next(Workload::Position, rng)
                }
            }
        }
    }

    /// The operation as an HTTP request to Proxima.
    pub fn http(&self, op: &Op) -> Call {
        let get = |path: String| Call {
            method: Method::GET,
            path,
            body: None,
        };
        match op {
            Op::Health => get("/healthz".to_string()),
            Op::NearbyPois(c) => get(format!(
                "/v1/pois/nearby?lat={}&lon={}&radius_m={}&limit={}{}",
                c.lat,
                c.lon,
                self.radius_m,
                self.k,
                self.fields
                    .as_deref()
                    .map_or(String::new(), |f| format!("&fields={f}"))
            )),
            Op::WithinPois(c) => {
                let (w, s, e, n) = self.square(*c);
                get(format!(
                    "/v1/pois/within?bbox={w},{s},{e},{n}&limit={}",
                    self.k
                ))
            }
            Op::NearbyTravellers(c) => get(format!(
                "/v1/travellers/nearby?lat={}&lon={}&radius_m={}&limit={}",
                c.lat, c.lon, self.radius_m, self.k
            )),
            Op::Position(m) => Call {
                method: Method::PUT,
                path: format!("/v1/travellers/bench:t:{}/position", m.traveller),
                body: Some((
                    "application/json",
                    Bytes::from(format!(
                        "{{\"lat\":{},\"lon\":{},\"ts\":{}}}",
                        m.lat, m.lon, m.ts
                    )),
                )),
            },
            Op::Route { trip, variant } => {
                let how = match variant {
                    0 => "",
                    1 => "&simplify_m=20",
                    _ => "&format=gpx",
                };
                get(format!(
                    "/v1/trips/bench:trip:{trip}/route?viewer=bench:t:{trip}{how}"
                ))
            }
            Op::Positions(moves) => {
                let mut body = String::with_capacity(moves.len() * 80);
                for m in moves {
                    body.push_str(&format!(
                        "{{\"id\":\"bench:t:{}\",\"lat\":{},\"lon\":{},\"ts\":{}}}\n",
                        m.traveller, m.lat, m.lon, m.ts
                    ));
                }
                Call {
                    method: Method::POST,
                    path: "/v1/positions".to_string(),
                    body: Some(("application/x-ndjson", Bytes::from(body))),
                }
            }
        }
    }

    /// The square of side `2 × radius` around `c`: `(west, south, east, north)`.
    pub fn square(&self, c: LatLon) -> (f64, f64, f64, f64) {
        let d = self.radius_m / M_PER_DEGREE;
        (
            (c.lon - d).max(-180.0),
            (c.lat - d).max(-90.0),
            (c.lon + d).min(180.0),
            (c.lat + d).min(90.0),
        )
    }
}

/// One traveller's move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    /// Which traveller: `bench:t:<n>`.
    pub traveller: usize,
    /// New latitude.
    pub lat: f64,
    /// New longitude.
    pub lon: f64,
    /// Its timestamp.
    pub ts: i64,
}

/// What a request does, whatever the target speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A liveness probe (`/healthz`, `PING`).
    Health,
    /// The `k` POIs nearest a point within the radius.
    NearbyPois(LatLon),
    /// POIs in the square around a point.
    WithinPois(LatLon),
    /// The `k` travellers nearest a point within the radius.
    NearbyTravellers(LatLon),
    /// One position update.
    Position(Move),
    /// A batch of position updates.
    Positions(Vec<Move>),
    /// A read of trip `bench:trip:<trip>`'s route: 0 a page, 1 simplified, 2 GPX.
    Route {
        /// Which trip.
        trip: usize,
        /// Which read.
        variant: u8,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scenario() -> std::sync::Arc<Scenario> {
        let p = LatLon::new(60.17, 24.94).expect("valid");
        std::sync::Arc::new(Scenario::new(vec![p], vec![p; 10], 2000.0, 20, 3))
    }

    #[test]
    fn walkers_step_about_seven_metres_a_report_along_a_path_even_near_a_pole() {
        for start in [(60.17, 24.94), (89.99, 179.999), (-45.0, -179.99)] {
            let p = LatLon::new(start.0, start.1).expect("valid");
            let mut s = Scenario::new(vec![p], vec![p], 2000.0, 20, 1);
            s.walk = true;
            let mut rng = SmallRng::seed_from_u64(3);
            let points: Vec<(f64, f64)> = (0..400)
                .map(|_| {
                    let (i, lat, lon) = s.moved(&mut rng);
                    assert_eq!(i, 0);
                    assert!(LatLon::new(lat, lon).is_ok(), "{lat}, {lon} on the globe");
                    (lat, lon)
                })
                .collect();
            let metres = |a: (f64, f64), b: (f64, f64)| {
                proxima_engine::geometry::haversine_m(
                    LatLon::new(a.0, a.1).expect("valid"),
                    LatLon::new(b.0, b.1).expect("valid"),
                )
            };
            if start.0 < 89.0 {
                // 7 m on, weaving, with up to 2 m of noise in each coordinate at each end.
                for w in points.windows(2) {
                    let step = metres(w[0], w[1]);
                    assert!((1.0..=13.0).contains(&step), "a step of {step} m");
                }
                // A path: 400 steps take it kilometres away, not round its start.
                assert!(metres(points[0], points[399]) > 2_000.0);
            }
        }
    }

    #[test]
    fn workload_names_round_trip() {
        for w in ALL {
            assert_eq!(w.name().parse::<Workload>(), Ok(w));
        }
        assert!("nope".parse::<Workload>().is_err());
    }

    #[test]
    fn requests_carry_what_their_workload_needs() {
        let s = scenario();
        let mut rng = SmallRng::seed_from_u64(1);
        let (kind, op, updates) = s.next(Workload::Positions, &mut rng);
        assert_eq!((kind, updates), (Kind::Update, 3));
        let body = s.http(&op).body.expect("a body").1;
        let lines: Vec<serde_json::Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 3);
        // Each traveller's timestamps rise, from the wall clock on, batch after batch.
        let started = proxima_engine::clock::Clock::now_ms(&proxima_engine::clock::SystemClock);
        let mut last: std::collections::HashMap<String, i64> = Default::default();
        for _ in 0..100 {
            let (_, op, _) = s.next(Workload::Positions, &mut rng);
            let Op::Positions(moves) = op else {
                panic!("a batch");
            };
            for m in moves {
                let id = format!("bench:t:{}", m.traveller);
                assert!(m.ts >= started, "from the wall clock");
                assert!(last.get(&id).is_none_or(|&t| t < m.ts), "rising for {id}");
                last.insert(id, m.ts);
            }
        }
        let (kind, op, _) = s.next(Workload::NearbyPois, &mut rng);
        assert_eq!(kind, Kind::Query);
        assert!(
            s.http(&op)
                .path
                .starts_with("/v1/pois/nearby?lat=60.17&lon=24.94&radius_m=2000&limit=20")
        );
        let queries = (0..1000)
            .filter(|_| s.next(Workload::Mixed, &mut rng).0 == Kind::Query)
            .count();
        assert!(
            (50..150).contains(&queries),
            "about 10 % queries: {queries}"
        );
    }
}
