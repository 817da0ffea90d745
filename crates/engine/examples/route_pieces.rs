//! The route store's two ways in, on the workload that decides between them: many trips
//! with a few new points each. Each round adds PIECES × PIECE points of random trips (of
//! TRIPS, ids like the harness's), then:
//! - `straight`: settles them straight into the chunks, a transaction a piece
//!   (`RouteStore::append`, the store's only way in before fresh pieces);
//! - `pieces`: writes them as fresh pieces (`RouteStore::add_fresh`), then settles every
//!   piece in parts of PART trips (`RouteStore::settle_some`).
//!
//! `cargo run --release -p proxima-engine --example route_pieces [TRIPS PIECE PIECES PART
//! WAY [PLACES]]` (defaults 1,000,000 250,000 32 4,096 both anywhere; WAY is `straight`,
//! `pieces` or `both`; PLACES is `anywhere`, every point at a random place on the globe, a
//! new cell and country lookup each, `near`, each trip's points within about 100 m of
//! its own start, as `proxima bench --workload trips` sends them, or `walk`, each trip a
//! phone on a walk, a fix every 5 s, 7 m on, with 2 m of noise) prints each round's
//! points a second and microseconds a point, three rounds a way, each way on a fresh
//! store; then the store's bytes a point, table by table, before and after compacting
//! (`SPACE=1`: after each round's pieces and settling too).

use std::time::Instant;

use proxima_engine::routes::{RoutePoint, RouteStore};

/// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<usize> = words
        .iter()
        .take(4)
        .map(|a| a.parse().expect("numbers: TRIPS PIECE PIECES PART"))
        .collect();
    let which = words.get(4).map_or("both", String::as_str);
    let places = words.get(5).map_or("anywhere", String::as_str);
    let (near, walk) = match places {
        "anywhere" => (false, false),
        "near" => (true, false),
        "walk" => (false, true),
        other => panic!("PLACES is anywhere, near or walk, not {other:?}"),
    };
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (trips, piece, pieces, part) = (
        arg(0, 1_000_000),
        arg(1, 250_000),
        arg(2, 32),
        arg(3, 4_096),
    );
    let ids: Vec<String> = (0..trips).map(|i| format!("bench:trip:{i}")).collect();
    for way in ["straight", "pieces"] {
        if which != "both" && which != way {
            continue;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("routes.redb");
        let mut store = RouteStore::open(&path).expect("opens");
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Each trip's walk: where it is, its heading (radians) and its last `ts`.
        let mut walkers: Vec<(f64, f64, f64, i64)> = if walk {
            (0..trips)
                .map(|t| {
                    let h = (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    (
                        (h % 1_200_000) as f64 / 1e4 - 60.0,
                        ((h >> 24) % 3_400_000) as f64 / 1e4 - 170.0,
                        (h >> 40) as f64,
                        1_700_000_000_000,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        for round in 0..3 {
            let mut written = Vec::new();
            for k in 0..pieces {
                let mut points: Vec<(&str, RoutePoint)> = (0..piece)
                    .map(|j| {
                        let t = next() as usize % trips;
                        let trip = ids[t].as_str();
                        let ts = 1_700_000_000_000 + ((round * pieces + k) * piece + j) as i64;
                        let (mut lat, mut lon) = (
                            (next() % 1_600_000) as f64 / 1e4 - 80.0,
                            (next() % 3_500_000) as f64 / 1e4 - 175.0,
                        );
                        if walk {
                            // A phone on a walk: a fix every 5 s (give or take 0.5 s), 7 m
                            // on, turning gently, with 2 m of noise.
                            let (wlat, wlon, heading, wts) = &mut walkers[t];
                            *heading += ((next() % 2_001) as f64 / 1_000.0 - 1.0) * 0.2;
                            *wlat += 7.0 / 111_195.0 * heading.cos();
                            *wlon += 7.0 / (111_195.0 * wlat.to_radians().cos()) * heading.sin();
                            *wts += 4_500 + (next() % 1_001) as i64;
                            let noise =
                                |r: u64| ((r % 2_001) as f64 / 1_000.0 - 1.0) * 2.0 / 111_195.0;
                            return (
                                trip,
                                RoutePoint {
                                    ts: *wts,
                                    lat: *wlat + noise(next()),
                                    lon: *wlon + noise(next()),
                                },
                            );
                        }
                        if near {
                            // The trip's own start (a hash of its number), and a step
                            // of up to 0.001 degrees from it.
                            let h = (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                            lat = (h % 1_200_000) as f64 / 1e4 - 60.0 + lat / 8e4;
                            lon = ((h >> 24) % 3_400_000) as f64 / 1e4 - 170.0 + lon / 1.75e5;
                        }
                        (trip, RoutePoint { ts, lat, lon })
                    })
                    .collect();
                points.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
                written.push(points);
            }
            let n = (pieces * piece) as f64;
            let started = Instant::now();
            if way == "straight" {
                for points in &written {
                    store.append(points).expect("settles");
                }
                let s = started.elapsed().as_secs_f64();
                println!(
                    "{way} round {round}: {:.0} points/s ({:.2} µs a point)",
                    n / s,
                    s * 1e6 / n
                );
            } else {
                for points in &written {
                    store.add_fresh(points).expect("writes a piece");
                }
                let w = started.elapsed().as_secs_f64();
                if std::env::var_os("SPACE").is_some() {
                    report_space(&store, &path, n, "pieces written");
                }
                let started = Instant::now();
                if let Some(mut settling) = store.start_settling().expect("reads") {
                    while !store.settle_some(&mut settling, part).expect("settles") {}
                }
                if std::env::var_os("SPACE").is_some() {
                    report_space(&store, &path, n, "settled");
                }
                let s = started.elapsed().as_secs_f64();
                println!(
                    "{way} round {round}: pieces {:.0} points/s ({:.2} µs a point), settling {:.0} points/s ({:.2} µs a point), both {:.2} µs a point",
                    n / w,
                    w * 1e6 / n,
                    n / s,
                    s * 1e6 / n,
                    (w + s) * 1e6 / n
                );
            }
        }
        let points = (3 * pieces * piece) as f64;
        report_space(&store, &path, points, "after the rounds");
        let started = Instant::now();
        store.compact().expect("compacts");
        let took = started.elapsed().as_secs_f64();
        report_space(&store, &path, points, &format!("compacted in {took:.1} s"));
    }
}

/// Prints the file's bytes a point (`points` reports, repeats included) and each table's.
fn report_space(store: &RouteStore, path: &std::path::Path, points: f64, when: &str) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("the store's file");
    let (file, disk) = (meta.len() as f64, (meta.blocks() * 512) as f64);
    let space = store.space().expect("reads the space");
    println!(
        "{when}: file {:.2} bytes a point ({:.2} on disk), allocated {:.2}",
        file / points,
        disk / points,
        space.allocated as f64 / points
    );
    for (name, t) in &space.tables {
        println!(
            "  {name}: stored {:.2}, metadata {:.2}, unused {:.2} bytes a point",
            t.stored as f64 / points,
            t.metadata as f64 / points,
            t.fragmented as f64 / points
        );
    }
}
