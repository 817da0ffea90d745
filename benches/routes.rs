//! Reading a route: simplifying a 100,000-point walk (a point every 5 s, ~1.4 m/s, turning
//! gently; about 140 km over 5.8 days) to 25 m, its figures from nothing, and its stays
//! (100 m, 20 minutes); and the stays of a city break asked for at the widest the API
//! allows (10 km, a week): four cities 50 km apart, 5,000 points over 42 hours in each,
//! wandering within a few kilometres, where every run reaches across a city and falls
//! short of a week; and the walk's stays asked for the same way, where no start can be a
//! stay (each run, some 1,400 points, falls short). The simplified size is printed once,
//! so that the figure is read with it.
//!
//! `cargo bench --bench routes`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use proxima::routes::RoutePoint;
use proxima::routes::shape::{Figures, simplify};
use proxima::routes::stays::stays;

fn walk(n: usize) -> Vec<RoutePoint> {
    let (mut lat, mut lon, mut heading) = (60.17f64, 24.94f64, 0.3f64);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|i| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            heading += ((rng % 1_000) as f64 / 1_000.0 - 0.5) * 0.2;
            let step_m = 7.0;
            lat += step_m * heading.cos() / 111_195.0;
            lon += step_m * heading.sin() / (111_195.0 * lat.to_radians().cos());
            RoutePoint {
                ts: 1_800_000_000_000 + i as i64 * 5_000,
                lat,
                lon,
            }
        })
        .collect()
}

/// Four cities 50 km apart on a line, `per_city` points 30 s apart in each, wandering
/// within about 3 km of its centre.
fn city_break(per_city: usize) -> Vec<RoutePoint> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut unit = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 1_000_000) as f64 / 1_000_000.0 - 0.5
    };
    (0..4 * per_city)
        .map(|i| {
            let city = (i / per_city) as f64;
            RoutePoint {
                ts: 1_800_000_000_000 + i as i64 * 30_000,
                lat: 48.0 + unit() * 0.05,
                lon: 2.0 + city * 0.67 + unit() * 0.07,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let points = walk(100_000);
    println!(
        "100,000 points simplified to 25 m keep {}",
        simplify(&points, 25.0).len()
    );
    c.bench_function("simplify_100k_points_to_25_m", |b| {
        b.iter(|| simplify(std::hint::black_box(&points), 25.0))
    });
    c.bench_function("figures_of_100k_points", |b| {
        b.iter(|| Figures::of(std::hint::black_box(&points)))
    });
    c.bench_function("stays_of_100k_points_100_m_20_minutes", |b| {
        b.iter(|| stays(std::hint::black_box(&points), 100.0, 20 * 60_000))
    });
    c.bench_function("stays_of_100k_points_10_km_a_week", |b| {
        b.iter(|| stays(std::hint::black_box(&points), 10_000.0, 7 * 86_400_000))
    });
    let cities = city_break(5_000);
    c.bench_function("stays_of_a_city_break_10_km_a_week", |b| {
        b.iter(|| stays(std::hint::black_box(&cities), 10_000.0, 7 * 86_400_000))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
