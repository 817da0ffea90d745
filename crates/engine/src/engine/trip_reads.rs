//! What the edge reads of a trip beyond its record: the whole of a window's route, and
//! the POI of Proxima's own index nearest a stay (the reads as one reader may see them,
//! figures included, are in `zones.rs`).

use super::{Engine, EngineError};
use crate::geometry::LatLon;
use crate::pois::{NearbyQuery, PoiFilter};
use crate::routes::RoutePoint;
use crate::routes::stays::Stay;

/// The most points a whole-window read takes (for simplifying and for stays): 2,000,000
/// points are 48 MB in memory and about 0.3 s of simplifying; a longer window is refused,
/// to be read in pages or narrower windows.
pub const MAX_WHOLE_ROUTE_POINTS: usize = 2_000_000;

/// The POI nearest a stay.
#[derive(Debug, Clone, PartialEq)]
pub struct StayPoi {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its category.
    pub category: String,
    /// From the stay's centre, metres.
    pub distance_m: f64,
}

/// A stay and the POI nearest it, if one lies within the stay's radius.
#[derive(Debug, Clone, PartialEq)]
pub struct StayAt {
    /// The stay.
    pub stay: Stay,
    /// The nearest POI within the radius of its centre.
    pub poi: Option<StayPoi>,
}

impl Engine {
    /// Every point of trip `id` with `from <= ts <= to`, at most
    /// [`MAX_WHOLE_ROUTE_POINTS`].
    pub fn whole_route(
        &self,
        id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<RoutePoint>, EngineError> {
        let (points, more) = self.route(id, from, to, None, MAX_WHOLE_ROUTE_POINTS)?;
        if more {
            return Err(EngineError::RouteTooLong {
                max: MAX_WHOLE_ROUTE_POINTS,
            });
        }
        Ok(points)
    }

    /// The POI nearest `centre` within `radius_m`, if any (ties broken by id).
    pub(super) fn nearest_poi(&self, centre: LatLon, radius_m: f64) -> Option<StayPoi> {
        let query = NearbyQuery {
            center: centre,
            radius_m: Some(radius_m),
            limit: 1,
            filter: PoiFilter::default(),
            after: None,
        };
        self.nearby_pois(query, None, |page| {
            page.items.first().map(|hit| StayPoi {
                id: hit.poi.id().to_owned(),
                name: hit.poi.name().to_owned(),
                category: hit.poi.category().to_owned(),
                distance_m: hit.distance_m,
            })
        })
        .ok()
        .flatten()
    }
}
