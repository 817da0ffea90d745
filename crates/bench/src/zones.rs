//! The `zones` workload's stage: [`ZONES_PER_TRAVELLER`] privacy zones around every
//! traveller, put over HTTP before the first run that needs them: one circle where the
//! traveller starts (it moves within about 100 m of it, so most of its reports fall in
//! the zone), the others a kilometre or more away in turn around it, as a traveller's
//! home, work and family would be.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::Method;

use super::BenchError;
use super::args::BenchConfig;
use super::fences::send_all;
use super::http::Call;
use super::workload::Scenario;

/// Zones a traveller has: the number the target names.
pub const ZONES_PER_TRAVELLER: usize = 10;
/// Each zone's radius, metres.
const ZONE_RADIUS_M: f64 = 200.0;

/// Puts every traveller's zones.
pub async fn set_up(
    addr: SocketAddr,
    config: &BenchConfig,
    scenario: &Scenario,
) -> Result<(), BenchError> {
    let places = Arc::new(scenario.travellers.clone());
    let total = places.len() * ZONES_PER_TRAVELLER;
    send_all(addr, config.key.as_deref(), "privacy zones", total, move |j| {
        let (i, z) = (j / ZONES_PER_TRAVELLER, j % ZONES_PER_TRAVELLER);
        let home = places[i];
        // Zone 0 where it starts; the others on a ring, 1 to 9 km out.
        let (dlat, dlon) = if z == 0 {
            (0.0, 0.0)
        } else {
            let angle = z as f64 * std::f64::consts::TAU / 9.0;
            let km = z as f64;
            let dlat = km / 111.2 * angle.sin();
            let dlon = km / (111.2 * home.lat.to_radians().cos().max(0.05)) * angle.cos();
            (dlat, dlon)
        };
        let lat = (home.lat + dlat).clamp(-89.9, 89.9);
        let lon = (home.lon + dlon + 180.0).rem_euclid(360.0) - 180.0;
        Some(Call {
            method: Method::PUT,
            path: format!("/v1/travellers/bench:t:{i}/privacy-zones/z{z}"),
            body: Some((
                "application/json",
                bytes::Bytes::from(format!(
                    "{{\"area\":{{\"type\":\"Circle\",\"center\":[{lon},{lat}],\"radius_m\":{ZONE_RADIUS_M}}}}}"
                )),
            )),
        })
    })
    .await
}
