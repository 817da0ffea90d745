//! Every invalid area is refused with the ring and position at fault named.

use super::*;

fn polygon(rings: &[&[[f64; 2]]]) -> Result<Area, AreaError> {
    Area::polygon(
        rings
            .iter()
            .map(|r| r.iter().map(|p| p.to_vec()).collect())
            .collect(),
        10_000,
    )
}

fn refusal(result: Result<Area, AreaError>) -> String {
    result.expect_err("refused").to_string()
}

const SQUARE: [[f64; 2]; 5] = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]];

#[test]
fn a_valid_polygon_with_a_hole_is_accepted_and_its_hole_is_outside() {
    let hole = [
        [0.25, 0.25],
        [0.25, 0.75],
        [0.75, 0.75],
        [0.75, 0.25],
        [0.25, 0.25],
    ];
    let area = polygon(&[&SQUARE, &hole]).expect("valid");
    assert!(area.contains(LatLon { lat: 0.1, lon: 0.1 }));
    assert!(!area.contains(LatLon { lat: 0.5, lon: 0.5 }), "in the hole");
    assert!(
        area.contains(LatLon {
            lat: 0.25,
            lon: 0.5
        }),
        "on the hole's edge"
    );
    assert!(area.contains(LatLon { lat: 1.0, lon: 1.0 }), "on a corner");
    assert!(!area.contains(LatLon { lat: 1.0, lon: 1.5 }));
}

#[test]
fn positions_are_named_when_they_are_not_coordinates() {
    let raw = vec![vec![
        vec![0.0, 0.0],
        vec![1.0, 0.0],
        vec![1.0],
        vec![0.0, 1.0],
        vec![0.0, 0.0],
    ]];
    assert_eq!(
        refusal(Area::polygon(raw, 10_000)),
        "coordinates[0][2]: a position is [lon, lat] (or [lon, lat, altitude]), got 1 number(s)"
    );
    let off = [[0.0, 0.0], [181.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
    assert_eq!(
        refusal(polygon(&[&off])),
        "coordinates[0][1]: longitude must be a finite number in [-180, 180], got 181"
    );
    let off = [[0.0, 0.0], [1.0, 0.0], [1.0, -91.0], [0.0, 0.0]];
    assert_eq!(
        refusal(polygon(&[&off])),
        "coordinates[0][2]: latitude must be a finite number in [-90, 90], got -91"
    );
}

#[test]
fn rings_must_be_closed_and_large_enough() {
    let open = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    assert_eq!(
        refusal(polygon(&[&open])),
        "coordinates[0]: the ring is not closed: its last position [0.0, 1.0] differs from its first [0.0, 0.0]"
    );
    let short = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]];
    assert_eq!(
        refusal(polygon(&[&short])),
        "coordinates[0]: a ring needs at least 4 positions, the last repeating the first; got 3"
    );
    let flat = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]];
    assert_eq!(
        refusal(polygon(&[&flat])),
        "coordinates[0]: a ring needs at least 3 distinct positions"
    );
}

#[test]
fn a_ring_crossing_itself_names_the_two_edges() {
    let bowtie = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]];
    assert_eq!(
        refusal(polygon(&[&bowtie])),
        "coordinates[0]: the ring crosses or touches itself: the edge from position 0 to 1 meets the edge from position 2 to 3"
    );
    // Positions are named as written, repeated ones included.
    let bowtie = [
        [0.0, 0.0],
        [0.0, 0.0],
        [1.0, 1.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ];
    assert!(
        refusal(polygon(&[&bowtie]))
            .ends_with("the edge from position 0 to 2 meets the edge from position 3 to 4"),
    );
}

#[test]
fn holes_must_lie_inside_their_outline_without_crossing_it() {
    let outside = [[2.0, 2.0], [3.0, 2.0], [3.0, 3.0], [2.0, 2.0]];
    assert_eq!(
        refusal(polygon(&[&SQUARE, &outside])),
        "coordinates[1]: the hole is not inside the polygon's outline (ring 0)"
    );
    let crossing = [[0.5, 0.5], [1.5, 0.5], [1.5, 0.7], [0.5, 0.5]];
    assert_eq!(
        refusal(polygon(&[&SQUARE, &crossing])),
        "coordinates[1]: the ring crosses ring 0 of the same polygon: its the edge from position 0 to 1 meets that ring's the edge from position 1 to 2"
    );
}

#[test]
fn an_area_across_the_antimeridian_must_be_cut() {
    let wide = [[170.0, 0.0], [-170.0, 0.0], [-170.0, 1.0], [170.0, 0.0]];
    assert_eq!(
        refusal(polygon(&[&wide])),
        "coordinates[0]: the ring spans 340° of longitude; an area crossing the antimeridian must be a MultiPolygon cut at ±180"
    );
}

#[test]
fn the_vertex_limit_is_checked_first() {
    let many: Vec<Vec<f64>> = (0..=20)
        .map(|i| {
            let a = f64::from(i) / 20.0 * std::f64::consts::TAU;
            vec![a.cos(), a.sin()]
        })
        .collect();
    assert_eq!(
        refusal(Area::polygon(vec![many], 20)),
        "coordinates: 21 positions; an area may have at most 20"
    );
}

#[test]
fn multipolygons_name_the_polygon_too() {
    let raw = vec![
        vec![SQUARE.iter().map(|p| p.to_vec()).collect()],
        vec![vec![vec![5.0, 5.0], vec![6.0, 5.0], vec![5.0, 5.0]]],
    ];
    assert_eq!(
        refusal(Area::multi_polygon(raw, 100)),
        "coordinates[1][0]: a ring needs at least 4 positions, the last repeating the first; got 3"
    );
}

#[test]
fn circles_need_a_radius_within_the_earth() {
    let center = LatLon { lat: 0.0, lon: 0.0 };
    assert_eq!(
        refusal(Area::circle(center, -1.0)),
        format!("radius_m: must be a number from 0 to {MAX_RADIUS_M}, got -1")
    );
    assert!(Area::circle(center, MAX_RADIUS_M).is_ok());
}
