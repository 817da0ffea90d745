//! Vectors on the unit sphere, as routes' reading uses them: products, the angle between
//! two directions, and the place a direction points at.

use crate::geometry::LatLon;

/// The dot product.
pub(super) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The cross product.
pub(super) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// The sum.
pub(super) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// The angle between the directions of two vectors of any length but zero, radians
/// (`atan2` of the cross and dot products: exact for small and large angles alike).
pub(super) fn angle(a: [f64; 3], b: [f64; 3]) -> f64 {
    let c = cross(a, b);
    dot(c, c).sqrt().atan2(dot(a, b))
}

/// The place the direction of `v` (any length but zero) points at.
pub(super) fn to_latlon(v: [f64; 3]) -> LatLon {
    let r = dot(v, v).sqrt();
    LatLon {
        lat: (v[2] / r).clamp(-1.0, 1.0).asin().to_degrees(),
        lon: v[1].atan2(v[0]).to_degrees(),
    }
}
