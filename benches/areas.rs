//! Checking an area as a request gives it (`Area::polygon`: positions, rings, crossings,
//! holes), on 10,000-vertex rings of four shapes, beside geo's `Validation` of the same
//! polygon (what the check used before, and a baseline in the same run): a circle, a
//! self-crossing star, a comb of long teeth (every tooth overlaps every other in
//! longitude, the worst case of geo's crossing sweep) and a spiral (every edge's box holds
//! the edges inside it).
//!
//! `cargo bench --bench areas`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::f64::consts::TAU;

use criterion::{Criterion, criterion_group, criterion_main};
use geo::algorithm::Validation;
use geo::{Coord, LineString, Polygon};
use proxima::geometry::area::Area;

const N: usize = 9_999;

fn circle() -> Vec<[f64; 2]> {
    (0..N)
        .map(|i| {
            let a = i as f64 / N as f64 * TAU;
            [a.cos() * 10.0, a.sin() * 10.0]
        })
        .collect()
}

fn star() -> Vec<[f64; 2]> {
    (0..N)
        .map(|i| {
            let a = (i * 4_999 % N) as f64 / N as f64 * TAU;
            [a.cos() * 10.0, a.sin() * 10.0]
        })
        .collect()
}

fn comb() -> Vec<[f64; 2]> {
    let mut comb = Vec::new();
    for t in 0..N / 4 {
        let y = t as f64 * 0.01;
        comb.extend([[0.0, y], [10.0, y], [10.0, y + 0.005], [0.5, y + 0.005]]);
    }
    comb.truncate(N - 2);
    let top = comb.last().expect("teeth")[1];
    comb.extend([[0.1, top], [-0.5, top], [-0.5, 0.0]]);
    comb
}

fn spiral() -> Vec<[f64; 2]> {
    let half = N / 2;
    let at = |i: usize, out: f64| {
        let a = i as f64 / half as f64 * 50.0 * TAU;
        let r = 1.0 + i as f64 * 0.002 + out;
        [a.cos() * r, a.sin() * r]
    };
    (0..half)
        .map(|i| at(i, 0.0))
        .chain((0..half).rev().map(|i| at(i, 0.001)))
        .collect()
}

fn rings(points: &[[f64; 2]]) -> Vec<Vec<Vec<f64>>> {
    let mut ring: Vec<Vec<f64>> = points.iter().map(|p| p.to_vec()).collect();
    ring.push(ring[0].clone());
    vec![ring]
}

fn geo_polygon(points: &[[f64; 2]]) -> Polygon<f64> {
    let mut coords: Vec<Coord<f64>> = points.iter().map(|p| Coord { x: p[0], y: p[1] }).collect();
    coords.push(coords[0]);
    Polygon::new(LineString::new(coords), vec![])
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("area_check_10k_vertices");
    group.sample_size(10);
    for (name, points) in [
        ("circle", circle()),
        ("star", star()),
        ("comb", comb()),
        ("spiral", spiral()),
    ] {
        let raw = rings(&points);
        group.bench_function(format!("{name}/proxima"), |b| {
            b.iter(|| Area::polygon(raw.clone(), 100_000).is_ok())
        });
        let polygon = geo_polygon(&points);
        group.bench_function(format!("{name}/geo_validation"), |b| {
            b.iter(|| polygon.is_valid())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
