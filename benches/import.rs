//! Import parsing throughput on the bundled real files: the Helsinki OpenStreetMap extract
//! (`osm-pbf`, both passes, all cores) and the GeoNames cities (`csv`).
//!
//! `cargo bench --bench import`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxima::import::{read_csv, read_osm_pbf};

const HELSINKI: &[u8] = include_bytes!("../data/helsinki.osm.pbf");
const CITIES: &[u8] = include_bytes!("../data/cities15000.csv");

fn bench(c: &mut Criterion) {
    let pois = read_osm_pbf(|| Ok(HELSINKI)).expect("the extract reads");
    let from_ways = pois
        .pois
        .iter()
        .filter(|p| p.id.starts_with("osm:way/"))
        .count();
    eprintln!(
        "helsinki.osm.pbf: {} POIs ({} from nodes, {} from ways), {} skipped",
        pois.pois.len(),
        pois.pois.len() - from_ways,
        from_ways,
        pois.skipped
    );
    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(pois.pois.len() as u64));
    group.bench_function("osm_pbf_helsinki", |b| {
        b.iter(|| black_box(read_osm_pbf(|| Ok(HELSINKI))))
    });
    group.throughput(Throughput::Elements(34_006));
    group.bench_function("csv_cities", |b| b.iter(|| black_box(read_csv(CITIES))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
