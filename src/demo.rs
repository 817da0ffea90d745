//! `proxima serve --demo`: a few hundred simulated travellers moving around the world's big
//! cities, so that a new user has something to watch in the viewer.
//!
//! Each traveller walks, cycles or drives around its city on a wandering heading, shares its
//! position publicly, and reports every second. Now and then one goes offline for 10 to 60 s,
//! keeping its reports, and sends them as one late batch, shuffled, when it comes back: the
//! late and out-of-order reports real phones send after a tunnel. Reports go through the
//! engine's one write path, as the API's do.
//!
//! The first traveller of each city is on a trip (followed by `family`), so its route
//! grows on disk as it moves; Helsinki's trip is shared by a link whose follower's page
//! the server prints when it starts.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::engine::Engine;
use crate::geometry::LatLon;
use crate::travellers::{PositionUpdate, Sharing, Visibility};

/// Big cities the travellers live in: name, latitude, longitude.
const CITIES: &[(&str, f64, f64)] = &[
    ("helsinki", 60.1699, 24.9384),
    ("london", 51.5074, -0.1278),
    ("paris", 48.8566, 2.3522),
    ("new-york", 40.7128, -74.0060),
    ("tokyo", 35.6762, 139.6503),
    ("sao-paulo", -23.5505, -46.6333),
    ("lagos", 6.5244, 3.3792),
    ("mumbai", 19.0760, 72.8777),
    ("sydney", -33.8688, 151.2093),
    ("mexico-city", 19.4326, -99.1332),
    ("cairo", 30.0444, 31.2357),
    ("suva", -18.1248, 178.4501),
];

/// One simulated traveller.
struct Walker {
    id: String,
    at: LatLon,
    heading_rad: f64,
    speed_mps: f64,
    /// Seconds left offline; reports meanwhile wait in `held`.
    offline_s: u32,
    held: Vec<PositionUpdate>,
}

/// The simulation: its travellers and its randomness.
pub struct Demo {
    walkers: Vec<Walker>,
    rng: SmallRng,
    /// The token of the link that shares the first trip, if it could be made.
    pub shared_trip_token: Option<String>,
}

/// How the demo's travellers move, by speed: the trips' titles.
const WAYS: [&str; 3] = ["on foot", "by bike", "by car"];

/// How long the demo's share link lasts: a day.
const LINK_MS: i64 = 86_400_000;

/// Puts the first traveller of each city on a trip followed by `family`, and shares the
/// first trip by a link; gives the link's token.
fn start_trips(engine: &Engine, walkers: &[Walker]) -> Option<String> {
    let now = engine.now_ms();
    let mut token = None;
    for (i, walker) in walkers.iter().take(CITIES.len()).enumerate() {
        let (city, _, _) = CITIES[i];
        let id = format!("demo-trip-{city}");
        let title = format!("{} {}", city.replace('-', " "), WAYS[i % 3]);
        let Ok(trip) = crate::trips::Trip::new(id.clone(), walker.id.clone(), title, now, None)
        else {
            continue;
        };
        if engine.put_trip(trip).is_err() || engine.add_follower(&id, "family").is_err() {
            continue;
        }
        if i == 0
            && let Ok((_, _, shared)) = engine.create_link(&id, now + LINK_MS, None, None)
        {
            token = Some(shared);
        }
    }
    token
}

impl Demo {
    /// `count` travellers spread over the cities, each sharing publicly.
    pub fn new(engine: &Engine, count: usize, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let public = Sharing::new(Visibility::Public, Vec::new()).expect("a valid setting");
        let walkers = (0..count)
            .map(|i| {
                let (city, lat, lon) = CITIES[i % CITIES.len()];
                let id = format!("demo-{city}-{i}");
                // Sharing is set once; a failure leaves that traveller private, not the demo.
                let _ = engine.set_sharing(&id, public.clone());
                let at = LatLon::new(
                    lat + rng.random_range(-0.03..0.03),
                    wrap_lon(lon + rng.random_range(-0.05..0.05)),
                )
                .expect("near a city");
                Walker {
                    id,
                    at,
                    heading_rad: rng.random_range(0.0..std::f64::consts::TAU),
                    speed_mps: [1.4, 4.5, 12.0][i % 3],
                    offline_s: 0,
                    held: Vec::new(),
                }
            })
            .collect::<Vec<_>>();
        let shared_trip_token = start_trips(engine, &walkers);
        Self {
            walkers,
            rng,
            shared_trip_token,
        }
    }

    /// One second of the simulation: every traveller moves and reports (or holds its report
    /// while offline); those coming back online send what they held.
    pub fn tick(&mut self, engine: &Engine) {
        let now = engine.now_ms();
        let mut batch = Vec::with_capacity(self.walkers.len());
        for walker in &mut self.walkers {
            walker.heading_rad += self.rng.random_range(-0.3..0.3);
            let step_m = walker.speed_mps;
            let dlat = step_m * walker.heading_rad.cos() / 111_320.0;
            let dlon = step_m * walker.heading_rad.sin()
                / (111_320.0 * walker.at.lat.to_radians().cos().max(0.01));
            let lat = (walker.at.lat + dlat).clamp(-89.9, 89.9);
            walker.at = LatLon::new(lat, wrap_lon(walker.at.lon + dlon)).expect("wrapped");
            let Ok(report) =
                PositionUpdate::new(walker.id.clone(), lat, walker.at.lon, now, None, None)
            else {
                continue;
            };
            if walker.offline_s > 0 {
                walker.held.push(report);
                walker.offline_s -= 1;
                if walker.offline_s == 0 {
                    // Back online: the held reports, late and in no particular order.
                    let mut held = std::mem::take(&mut walker.held);
                    for i in (1..held.len()).rev() {
                        held.swap(i, self.rng.random_range(0..=i));
                    }
                    batch.extend(held);
                }
            } else {
                batch.push(report);
                if self.rng.random_bool(0.002) {
                    walker.offline_s = self.rng.random_range(10..=60);
                }
            }
        }
        if let Err(e) = engine.update_positions(batch) {
            tracing::warn!(error = %e, "the demo's reports were refused");
        }
    }
}

fn wrap_lon(lon: f64) -> f64 {
    (lon + 180.0).rem_euclid(360.0) - 180.0
}

/// Runs the demo until the process ends: a tick a second. Prints the follower's page of
/// the shared trip, on the server at `addr`.
pub async fn run(engine: Arc<Engine>, count: usize, addr: std::net::SocketAddr) {
    let mut demo = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || Demo::new(&engine, count, 2026))
            .await
            .expect("the demo starts")
    };
    if let Some(token) = &demo.shared_trip_token {
        let page = format!("http://{addr}/t/{token}");
        tracing::info!(%page, "demo: a trip shared by a link; open its follower's page");
        // Printed beside the address; nobody may be reading stdout any more (a pipe closed):
        // that is no reason to stop the demo.
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "demo: follow a shared trip at {page}");
    }
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let engine = engine.clone();
        demo = tokio::task::spawn_blocking(move || {
            demo.tick(&engine);
            demo
        })
        .await
        .expect("a demo tick");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::{EngineConfig, LiveConfig};
    use crate::pois::CursorKey;
    use crate::travellers::TravellerConfig;

    #[test]
    fn demo_travellers_move_publicly_and_come_back_with_late_reports() {
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let engine = Engine::new(EngineConfig {
            cursor_key: CursorKey::random(),
            clock: clock.clone(),
            travellers: TravellerConfig {
                trail_capacity: 64,
                ttl_ms: 3_600_000,
            },
            routes: Default::default(),
            live: LiveConfig::default(),
        });
        let mut demo = Demo::new(&engine, 24, 7);
        demo.tick(&engine);
        let first = engine
            .traveller("demo-helsinki-0", None)
            .expect("visible to anyone");
        for _ in 0..30 {
            clock.advance(1000);
            demo.tick(&engine);
        }
        let later = engine.traveller("demo-helsinki-0", None).expect("visible");
        assert!(later.at.ts > first.at.ts);
        let moved = crate::geometry::haversine_m(first.at.position, later.at.position);
        assert!(moved > 1.0 && moved < 31.0 * 1.4 + 1.0, "walked {moved} m");
        // Put one offline, let it come back: its held reports arrive late and shuffled.
        demo.walkers[1].offline_s = 5;
        for _ in 0..6 {
            clock.advance(1000);
            demo.tick(&engine);
        }
        assert!(demo.walkers[1].held.is_empty(), "sent when back online");
        let trail = engine
            .trail(&demo.walkers[1].id, None, i64::MIN)
            .expect("a trail");
        assert!(
            trail.len() >= 6,
            "the late reports joined the trail: {}",
            trail.len()
        );
        // Helsinki's first traveller is on a trip shared by a link: its route grew.
        let token = demo.shared_trip_token.clone().expect("a shared trip");
        let (trip, _) = engine.open_link(&token).expect("the link opens");
        assert_eq!(trip.trip.traveller(), "demo-helsinki-0");
        assert_eq!(trip.followers, ["family"]);
        let figures = engine.trip_figures(trip.trip.id()).expect("reads");
        assert!(figures.points >= 30, "{} points", figures.points);
        assert!(figures.distance_m > 1.0);
        assert_eq!(figures.countries(), ["FI"]);
    }
}
