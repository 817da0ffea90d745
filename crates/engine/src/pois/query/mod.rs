//! The two POI queries, answered exactly: their types, and the filters both share.
//! [`nearby`] walks the trees best first; [`within`] walks the nodes that meet a box.

mod knn;
mod nearby;
mod within;

use super::index::{PoiIndex, PoiRef};
use super::packed::{CategoryMask, PackedEntry, PackedTree};
use crate::geometry::area::Area;
use crate::geometry::{BBox, LatLon};

/// Filters shared by both queries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoiFilter {
    /// Any of these categories; empty means every category.
    pub categories: Vec<String>,
    /// Only POIs with a rating at least this high (POIs without a rating are left out).
    pub min_rating: Option<f64>,
}

/// A nearby query. `radius_m: None` means the `limit` nearest anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyQuery {
    /// The place to measure from.
    pub center: LatLon,
    /// Only POIs at most this far, in metres.
    pub radius_m: Option<f64>,
    /// How many results at most.
    pub limit: usize,
    /// Category and rating filters.
    pub filter: PoiFilter,
    /// Continue after this `(distance, id)`: only results ranked strictly after it.
    pub after: Option<(f64, String)>,
}

/// A bounding-box query.
#[derive(Debug, Clone, PartialEq)]
pub struct WithinQuery {
    /// The box.
    pub bbox: BBox,
    /// How many results at most.
    pub limit: usize,
    /// Category and rating filters.
    pub filter: PoiFilter,
    /// Continue after this id: only ids strictly greater.
    pub after: Option<String>,
}

/// POIs inside an area, paged by id like [`WithinQuery`].
#[derive(Debug, Clone)]
pub struct AreaQuery {
    /// The area.
    pub area: Area,
    /// Page size.
    pub limit: usize,
    /// Filters.
    pub filter: PoiFilter,
    /// Only ids after this one (from a cursor).
    pub after: Option<String>,
}

/// A POI found by a nearby query, with its distance from the centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearbyHit<'a> {
    /// The POI.
    pub poi: PoiRef<'a>,
    /// Great-circle distance from the query centre, metres.
    pub distance_m: f64,
}

/// One page of results and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The results, in ranking order.
    pub items: Vec<T>,
    /// Whether at least one more result ranks after the last one here.
    pub more: bool,
}

/// The categories a filter admits, as interned ids (`None` for every category), and the
/// packed trees that hold them.
struct Categories<'a> {
    ids: Option<Vec<u32>>,
    mask: CategoryMask,
    /// The tree of all POIs, when the asked categories are not all in trees of their own
    /// (held apart from `own` so that the usual query allocates no list of one tree).
    base: Option<&'a PackedTree>,
    /// The asked categories' own trees (nothing else in them), when every one has one.
    own: Vec<&'a PackedTree>,
    /// Whether the trees are the asked categories' own.
    own_trees: bool,
}

impl<'a> Categories<'a> {
    #[inline]
    fn admit(&self, category: u32) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&category))
    }

    /// The packed trees that hold the categories.
    fn trees(&self) -> impl Iterator<Item = &'a PackedTree> + '_ {
        self.base.into_iter().chain(self.own.iter().copied())
    }
}

impl PoiIndex {
    /// The categories a filter admits; `None` when it names only categories no POI has.
    fn categories_of(&self, filter: &PoiFilter) -> Option<Categories<'_>> {
        if filter.categories.is_empty() {
            return Some(Categories {
                ids: None,
                mask: CategoryMask::ALL,
                base: Some(&self.base),
                own: Vec::new(),
                own_trees: false,
            });
        }
        let mut ids: Vec<u32> = filter
            .categories
            .iter()
            .filter_map(|c| self.category_id(c))
            .collect();
        if ids.is_empty() {
            return None;
        }
        ids.sort_unstable();
        ids.dedup();
        let mask = CategoryMask::of_all(&ids);
        // Their own trees if every asked category has one, else the tree of all POIs.
        let own = ids
            .iter()
            .map(|c| self.rare.get(c))
            .collect::<Option<Vec<_>>>();
        let own_trees = own.is_some();
        Some(Categories {
            ids: Some(ids),
            mask,
            base: (!own_trees).then_some(&self.base),
            own: own.unwrap_or_default(),
            own_trees,
        })
    }

    /// Whether a packed entry passes a minimum rating. Its `f32` rating is rounded down, so
    /// the exact one lies below the next `f32`; only a minimum in between needs the record.
    #[inline]
    fn rated_at_least(&self, e: &PackedEntry, min: Option<f64>) -> bool {
        let Some(min) = min else {
            return true;
        };
        if f64::from(e.rating) >= min {
            true
        } else if e.rating.is_nan() || f64::from(e.rating.next_up()) <= min {
            false
        } else {
            self.record(e.slot).rating().is_some_and(|r| r >= min)
        }
    }

    fn passes(filter: &PoiFilter, rating: Option<f64>) -> bool {
        match filter.min_rating {
            Some(min) => rating.is_some_and(|r| r >= min),
            None => true,
        }
    }
}
