//! The route's GPX read back by an independent tool, `gpsbabel` (Debian's package): every
//! point, in order, with its coordinates and time. Needs gpsbabel; skipped with a notice
//! without it, unless `PROXIMA_REQUIRE_GPSBABEL=1` (set by `.ci/run`).

use proxima::routes::RoutePoint;
use proxima::routes::shape::parts;
use proxima::server::route_gpx;

#[test]
fn gpsbabel_reads_the_gpx_back_with_the_same_points() {
    let Some(gpsbabel) = crate::common::outside_program(
        "gpsbabel_reads_the_gpx_back_with_the_same_points",
        "gpsbabel",
        "PROXIMA_REQUIRE_GPSBABEL",
        "apt-get install gpsbabel",
    ) else {
        return;
    };
    // Two parts (a gap of an hour), near the antimeridian and far south.
    let points: Vec<RoutePoint> = (0..300i64)
        .map(|i| RoutePoint {
            ts: 1_800_000_000_000 + i * 5_000 + if i >= 150 { 3_600_000 } else { 0 },
            lat: -45.0 + i as f64 * 1.3e-4,
            lon: 179.99 + i as f64 * 7e-5 - if i >= 143 { 360.0 } else { 0.0 },
        })
        .collect();
    let parts = parts(&points, 1_800_000);
    assert_eq!(parts.len(), 2);
    let dir = tempfile::tempdir().expect("a temp dir");
    let (gpx, csv) = (dir.path().join("trip.gpx"), dir.path().join("trip.csv"));
    std::fs::write(&gpx, route_gpx("a trip", &parts).expect("writes")).expect("saved");
    let status = std::process::Command::new(gpsbabel)
        .args(["-t", "-i", "gpx", "-f"])
        .arg(&gpx)
        .args(["-o", "unicsv,utc=0", "-F"])
        .arg(&csv)
        .status()
        .expect("gpsbabel runs");
    assert!(status.success(), "gpsbabel read the GPX");
    let text = std::fs::read_to_string(&csv).expect("gpsbabel's output");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .unwrap_or_else(|| panic!("a {name} column in {header:?}"))
    };
    let (lat, lon, time) = (column("Latitude"), column("Longitude"), column("Time"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), points.len(), "every point, once");
    for (row, p) in rows.iter().zip(&points) {
        let (la, lo): (f64, f64) = (
            row[lat].trim().parse().expect("a latitude"),
            row[lon].trim().parse().expect("a longitude"),
        );
        assert!(
            (la - p.lat).abs() < 1e-6 && (lo - p.lon).abs() < 1e-6,
            "{row:?} vs {p:?}"
        );
        // unicsv writes times to the second, hh:mm:ss.
        let seconds = (p.ts / 1000).rem_euclid(86_400);
        let want = format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        assert!(
            row[time].trim().starts_with(&want),
            "{} vs {want}",
            row[time]
        );
    }
}
