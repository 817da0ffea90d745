//! [`PoiRecord`]: a stored POI in 64 bytes, and [`PoiRef`], the borrowed view of one that
//! queries answer with.

use crate::geometry::LatLon;
use crate::pois::Poi;

/// A stored POI in compact form (64 bytes). The id and the name share one allocation: a
/// query's results read both, and one string is one cache miss and one allocation where two
/// were two of each.
#[derive(Debug, Clone)]
pub(crate) struct PoiRecord {
    /// The id followed by the name.
    text: Box<str>,
    /// Where the id ends in `text`.
    id_len: u32,
    pub(crate) category: u32,
    pub(crate) position: LatLon,
    /// Sorted by key.
    pub(crate) tags: Box<[(Box<str>, Box<str>)]>,
    /// The rating, or NaN for none: an `Option<f64>` would take 16 bytes, and ratings are
    /// never NaN.
    rating: f64,
}

const _: () = assert!(size_of::<Option<PoiRecord>>() == 64);

/// A stored POI, borrowed from the index (what queries return).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoiRef<'a> {
    /// The id then the name, split when asked: splitting reads the string (to check the
    /// boundary), and a query that only ranks POIs should not touch their strings.
    text: &'a str,
    id_len: u32,
    position: LatLon,
    category: &'a str,
    tags: &'a [(Box<str>, Box<str>)],
    rating: Option<f64>,
}

impl<'a> PoiRef<'a> {
    /// External id.
    pub fn id(&self) -> &'a str {
        &self.text[..self.id_len as usize]
    }
    /// Where it is.
    pub fn position(&self) -> LatLon {
        self.position
    }
    /// Display name.
    pub fn name(&self) -> &'a str {
        &self.text[self.id_len as usize..]
    }
    /// Category.
    pub fn category(&self) -> &'a str {
        self.category
    }
    /// Tags, sorted by key.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        self.tags.iter().map(|(k, v)| (&**k, &**v))
    }
    /// Rating, if any.
    pub fn rating(&self) -> Option<f64> {
        self.rating
    }
    /// An owned copy.
    pub fn to_poi(&self) -> Poi {
        Poi {
            id: self.id().to_string(),
            position: self.position,
            name: self.name().to_string(),
            category: self.category.to_string(),
            tags: self
                .tags()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            rating: self.rating,
        }
    }
}

/// Whether `slot` holds the record of `id`.
pub(super) fn slot_has_id(records: &[Option<PoiRecord>], slot: u32, id: &str) -> bool {
    records[slot as usize]
        .as_ref()
        .is_some_and(|r| r.id() == id)
}

impl PoiRecord {
    pub(crate) fn id(&self) -> &str {
        &self.text[..self.id_len as usize]
    }

    pub(super) fn from_poi(poi: Poi, category: u32) -> Self {
        let id_len = u32::try_from(poi.id.len()).expect("ids are short");
        let mut text = poi.id;
        text.push_str(&poi.name);
        Self {
            text: text.into_boxed_str(),
            id_len,
            position: poi.position,
            category,
            tags: poi
                .tags
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
            rating: poi.rating.unwrap_or(f64::NAN),
        }
    }

    pub(crate) fn rating(&self) -> Option<f64> {
        Some(self.rating).filter(|r| !r.is_nan())
    }

    /// The record as queries answer it, with its category's name.
    pub(super) fn view<'a>(&'a self, category: &'a str) -> PoiRef<'a> {
        PoiRef {
            text: &self.text,
            id_len: self.id_len,
            position: self.position,
            category,
            tags: &self.tags,
            rating: self.rating(),
        }
    }
}
