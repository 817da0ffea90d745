//! The shroud against an oracle: it holds every point of its zone, wherever on Earth the
//! zone is (the poles, the antimeridian), and hides nothing farther than its bound.

use proptest::prelude::*;

use super::*;

fn secret() -> impl Strategy<Value = ShroudSecret> {
    (0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64).prop_map(|(bearing, offset, margin)| ShroudSecret {
        bearing,
        offset,
        margin,
    })
}

fn place() -> impl Strategy<Value = LatLon> {
    prop_oneof![
        (-90.0..=90.0f64, -180.0..=180.0f64),
        // Near the poles and the antimeridian.
        (
            prop_oneof![85.0..=90.0f64, -90.0..=-85.0f64],
            -180.0..=180.0f64
        ),
        (
            -60.0..=60.0f64,
            prop_oneof![179.0..=180.0f64, -180.0..=-179.0f64]
        ),
    ]
    .prop_map(|(lat, lon)| LatLon { lat, lon })
}

/// Points spread over the area: its centre, its edge, and between.
fn points_in_circle(centre: LatLon, radius_m: f64) -> Vec<LatLon> {
    let mut points = vec![centre];
    for i in 0..36 {
        for f in [0.25, 0.5, 0.75, 1.0] {
            points.push(destination(centre, f64::from(i) * 10.0, radius_m * f));
        }
    }
    points
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_circle_zone_is_wholly_hidden_and_nothing_far_beyond_it(
        centre in place(),
        radius in prop_oneof![Just(0.0f64), 1.0..MAX_ZONE_RADIUS_M],
        secret in secret(),
    ) {
        let area = Area::circle(centre, radius).expect("valid");
        let shroud = Shroud::new(&area, &secret);
        for p in points_in_circle(centre, radius * 0.999) {
            prop_assert!(shroud.hides(p), "{p:?} in the zone is shown");
        }
        // Never nearer the zone's centre than OFFSET_MIN radii, never farther than the
        // bound: what the documentation promises.
        let r = radius.max(MIN_ZONE_RADIUS_M);
        let offset = haversine_m(centre, shroud.centre());
        prop_assert!(offset >= r * OFFSET_MIN * 0.999, "offset {offset} for radius {r}");
        // The shroud's far edge: its centre's offset and its radius (the offset again, the
        // zone and the margin).
        let reach = r * (2.0 * OFFSET_MAX + 1.0 + MARGIN_MAX) + 2.0;
        prop_assert!(offset + shroud.radius_m() <= reach * 1.001);
        for i in 0..36 {
            let far = destination(centre, f64::from(i) * 10.0, reach * 1.01 + 1.0);
            prop_assert!(!shroud.hides(far), "{far:?} far beyond the zone is hidden");
        }
    }

    #[test]
    fn a_polygon_zone_is_wholly_hidden(
        centre in (-80.0..80.0f64, -170.0..170.0f64),
        half in (0.0001..0.05f64, 0.0001..0.05f64),
        secret in secret(),
    ) {
        let (lat, lon) = centre;
        let (h_lat, h_lon) = half;
        let ring = vec![
            vec![lon - h_lon, lat - h_lat],
            vec![lon + h_lon, lat - h_lat],
            vec![lon + h_lon, lat + h_lat],
            vec![lon - h_lon, lat + h_lat],
            vec![lon - h_lon, lat - h_lat],
        ];
        let area = Area::polygon(vec![ring], 100).expect("valid");
        let shroud = Shroud::new(&area, &secret);
        for i in 0..=20 {
            for j in 0..=20 {
                // The edge too, a hair inside (so that rounding keeps it in the polygon).
                let f = |k: i32| -0.9999 + 1.9998 * f64::from(k) / 20.0;
                let p = LatLon {
                    lat: lat + h_lat * f(i),
                    lon: lon + h_lon * f(j),
                };
                prop_assert!(area.contains(p));
                prop_assert!(shroud.hides(p), "{p:?} in the zone is shown");
            }
        }
    }

    #[test]
    fn destination_goes_the_distance(from in place(), bearing in 0.0..360.0f64, d in 0.0..50_000.0f64) {
        let to = destination(from, bearing, d);
        prop_assert!((haversine_m(from, to) - d).abs() < 0.01 + d * 1e-9);
    }
}

#[test]
fn the_secret_is_kept_and_a_traveller_has_at_most_its_share_of_zones() {
    let zones = PrivacyZones::default();
    let area = Area::circle(
        LatLon {
            lat: 60.0,
            lon: 25.0,
        },
        200.0,
    )
    .expect("valid");
    let zone =
        |id: &str| PrivacyZone::new("ann", id, area.clone(), ShroudSecret::draw()).expect("valid");
    for i in 0..MAX_ZONES_PER_TRAVELLER {
        let z = zone(&format!("z{i:02}"));
        zones.check_put(&z).expect("room");
        assert!(zones.put(z).1);
    }
    assert_eq!(zones.check_put(&zone("one-more")), Err(ZoneError::Limit));
    zones
        .check_put(&zone("z00"))
        .expect("a replacement has room");
    let (left, existed) = zones.remove("ann", "z03");
    assert!(existed);
    assert_eq!(
        left.expect("some left").iter().count(),
        MAX_ZONES_PER_TRAVELLER - 1
    );
    assert_eq!(zones.remove_all("ann"), MAX_ZONES_PER_TRAVELLER - 1);
    assert!(zones.is_empty());
}

#[test]
fn a_zone_too_large_or_misnamed_is_refused_naming_the_field() {
    let big = Area::circle(LatLon { lat: 0.0, lon: 0.0 }, MAX_ZONE_RADIUS_M * 1.5).expect("valid");
    let err = PrivacyZone::new("ann", "home", big, ShroudSecret::draw()).expect_err("too large");
    assert!(err.to_string().starts_with("area: "), "{err}");
    let small = Area::circle(LatLon { lat: 0.0, lon: 0.0 }, 100.0).expect("valid");
    let err = PrivacyZone::new("ann", "a/b", small, ShroudSecret::draw()).expect_err("a bad id");
    assert!(err.to_string().starts_with("zone: "), "{err}");
}
