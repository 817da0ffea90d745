//! The same workloads against Redis GEO, for the side-by-side: POIs and travellers in two
//! geo sets, queries as `GEOSEARCH ... BYRADIUS ... ASC COUNT k WITHDIST`, updates as
//! `GEOADD` (one member, or a whole batch in one command).

use redis::aio::MultiplexedConnection;
use redis::{Cmd, Value, cmd};

use super::workload::{Op, Scenario};
use proxima_engine::geometry::LatLon;

/// The geo set holding POIs.
pub const POIS: &str = "bench:pois";
/// The geo set holding travellers.
pub const TRAVELLERS: &str = "bench:travellers";

/// One Redis connection.
pub struct RedisConn {
    conn: MultiplexedConnection,
}

impl RedisConn {
    /// Connects to `url` (`redis://host:port`).
    pub async fn open(url: &str) -> std::io::Result<Self> {
        let client = redis::Client::open(url).map_err(std::io::Error::other)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(std::io::Error::other)?;
        Ok(Self { conn })
    }

    /// Runs a command; `Ok(false)` if Redis answered with an error.
    pub async fn send(&mut self, command: &Cmd) -> std::io::Result<bool> {
        match command.query_async::<Value>(&mut self.conn).await {
            Ok(Value::ServerError(_)) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if e.is_io_error() || e.is_connection_dropped() => Err(std::io::Error::other(e)),
            Err(_) => Ok(false),
        }
    }
}

fn search(key: &str, c: LatLon, radius_m: f64, k: usize) -> Cmd {
    let mut command = cmd("GEOSEARCH");
    command
        .arg(key)
        .arg("FROMLONLAT")
        .arg(c.lon)
        .arg(c.lat)
        .arg("BYRADIUS")
        .arg(radius_m)
        .arg("m");
    command.arg("ASC").arg("COUNT").arg(k).arg("WITHDIST");
    command
}

/// The command for an operation.
pub fn command(scenario: &Scenario, op: &Op) -> Cmd {
    match op {
        Op::Health => cmd("PING"),
        Op::NearbyPois(c) => search(POIS, *c, scenario.radius_m, scenario.k),
        Op::NearbyTravellers(c) => search(TRAVELLERS, *c, scenario.radius_m, scenario.k),
        Op::WithinPois(c) => {
            let side = 2.0 * scenario.radius_m;
            let mut command = cmd("GEOSEARCH");
            command
                .arg(POIS)
                .arg("FROMLONLAT")
                .arg(c.lon)
                .arg(c.lat)
                .arg("BYBOX")
                .arg(side)
                .arg(side)
                .arg("m");
            command.arg("ASC").arg("COUNT").arg(scenario.k);
            command
        }
        Op::Position(m) => {
            let mut command = cmd("GEOADD");
            command
                .arg(TRAVELLERS)
                .arg(m.lon)
                .arg(m.lat)
                .arg(format!("bench:t:{}", m.traveller));
            command
        }
        Op::Positions(moves) => {
            let mut command = cmd("GEOADD");
            command.arg(TRAVELLERS);
            for m in moves {
                command
                    .arg(m.lon)
                    .arg(m.lat)
                    .arg(format!("bench:t:{}", m.traveller));
            }
            command
        }
        // Redis keeps no routes: `proxima bench` refuses the workload against it before
        // any command is made.
        Op::Route { .. } => cmd("PING"),
    }
}

/// `GEOADD key lon lat member ...` for a batch of places.
pub fn geoadd(key: &str, members: impl Iterator<Item = (String, LatLon)>) -> Cmd {
    let mut command = cmd("GEOADD");
    command.arg(key);
    for (member, p) in members {
        command.arg(p.lon).arg(p.lat).arg(member);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Move;

    #[test]
    fn operations_become_the_commands_redis_users_would_send() {
        let p = LatLon::new(60.17, 24.94).expect("valid");
        let scenario = Scenario::new(vec![p], vec![p], 2000.0, 20, 2);
        let packed = |c: Cmd| String::from_utf8_lossy(&c.get_packed_command()).replace("\r\n", " ");
        let nearby = packed(command(&scenario, &Op::NearbyPois(p)));
        for word in [
            "GEOSEARCH",
            POIS,
            "FROMLONLAT",
            "24.94",
            "60.17",
            "BYRADIUS",
            "2000",
            "ASC",
            "COUNT",
            "20",
            "WITHDIST",
        ] {
            assert!(nearby.contains(word), "{word} in {nearby}");
        }
        let moves = vec![
            Move {
                traveller: 1,
                lat: 1.0,
                lon: 2.0,
                ts: 0,
            },
            Move {
                traveller: 2,
                lat: 3.0,
                lon: 4.0,
                ts: 1,
            },
        ];
        let batch = packed(command(&scenario, &Op::Positions(moves)));
        assert!(
            batch.contains("GEOADD") && batch.contains("bench:t:1") && batch.contains("bench:t:2"),
            "{batch}"
        );
        assert!(packed(command(&scenario, &Op::Health)).contains("PING"));
    }
}
