//! Points of interest: the validated [`Poi`] value, the [`PoiIndex`] that holds them in
//! R-trees over unit vectors (a packed one and an rstar delta for recent writes), the
//! queries it answers and the cursors that page through them.
//!
//! This layer is a plain data structure: no locks, no threads, no I/O. The engine decides who
//! may read or write it and when.

mod cursor;
mod index;
mod packed;
mod query;

#[cfg(test)]
mod oracle_tests;

use std::collections::BTreeMap;

pub use cursor::{CursorError, CursorKey};
pub use index::{CategoryLimitError, PackedTrees, PoiIndex, PoiRef};
pub use query::{AreaQuery, NearbyHit, NearbyQuery, Page, PoiFilter, WithinQuery};

use crate::geometry::{CoordError, LatLon};
use crate::ids::{IdError, validate_record_id};

/// The longest name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// The longest category accepted, in bytes.
pub const MAX_CATEGORY_BYTES: usize = 64;
/// The most tags one POI may carry.
pub const MAX_TAGS: usize = 256;
/// The longest tag key accepted, in bytes.
pub const MAX_TAG_KEY_BYTES: usize = 256;
/// The longest tag value accepted, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 4096;
/// The highest rating accepted (ratings are on a 0 to 10 scale; 5-star scales fit inside).
pub const MAX_RATING: f64 = 10.0;

/// A point of interest, validated.
///
/// Invariants: `id` follows [`validate_record_id`]; `position` is a valid coordinate; `category` is
/// 1 to 64 bytes of `a-z`, `0-9`, `_` and `-`; `name` and tags are within the limits above;
/// `rating`, when present, is finite and in `[0, MAX_RATING]`.
///
/// Deserializing checks the invariants too ([`Poi::new`]): a record replayed from the log or
/// a snapshot is held to the rules the network's are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PoiFields")]
pub struct Poi {
    /// External id.
    pub id: String,
    /// Where it is.
    pub position: LatLon,
    /// Display name (may be empty).
    pub name: String,
    /// Short lowercase word: `cafe`, `museum`, `city`...
    pub category: String,
    /// Free-form attributes, sorted by key.
    pub tags: BTreeMap<String, String>,
    /// Optional rating on a 0 to 10 scale.
    pub rating: Option<f64>,
}

/// [`Poi`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct PoiFields {
    id: String,
    position: LatLon,
    name: String,
    category: String,
    tags: BTreeMap<String, String>,
    rating: Option<f64>,
}

impl TryFrom<PoiFields> for Poi {
    type Error = PoiError;

    fn try_from(f: PoiFields) -> Result<Self, PoiError> {
        let LatLon { lat, lon } = f.position;
        Self::new(f.id, lat, lon, f.name, f.category, f.tags, f.rating)
    }
}

/// Why a POI was refused. Each variant names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoiError {
    /// The id is malformed.
    #[error("id: {0}")]
    Id(#[from] IdError),
    /// The coordinate is out of range.
    #[error("{0}")]
    Coord(#[from] CoordError),
    /// The name is too long.
    #[error("name must be at most {MAX_NAME_BYTES} bytes, got {0}")]
    NameTooLong(usize),
    /// The category is empty, too long or not a lowercase word.
    #[error(
        "category must be 1 to {MAX_CATEGORY_BYTES} bytes of lowercase letters, digits, '_' or '-', got {0:?}"
    )]
    Category(String),
    /// Too many tags.
    #[error("tags: at most {MAX_TAGS} tags are allowed, got {0}")]
    TooManyTags(usize),
    /// A tag key or value is out of bounds.
    #[error("tags.{key}: {reason}")]
    Tag {
        /// The key at fault (shortened if very long).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The rating is not a finite number in range.
    #[error("rating must be a finite number in [0, {MAX_RATING}], got {0}")]
    Rating(f64),
}

/// Whether `category` is a short lowercase word: 1 to 64 bytes of `a-z0-9_-`.
pub fn is_valid_category(category: &str) -> bool {
    !category.is_empty()
        && category.len() <= MAX_CATEGORY_BYTES
        && category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Poi {
    /// Builds a POI, checking every field; the error names the first field at fault.
    pub fn new(
        id: String,
        lat: f64,
        lon: f64,
        name: String,
        category: String,
        tags: BTreeMap<String, String>,
        rating: Option<f64>,
    ) -> Result<Self, PoiError> {
        validate_record_id(&id)?;
        let position = LatLon::new(lat, lon)?;
        if name.len() > MAX_NAME_BYTES {
            return Err(PoiError::NameTooLong(name.len()));
        }
        if !is_valid_category(&category) {
            return Err(PoiError::Category(category));
        }
        if tags.len() > MAX_TAGS {
            return Err(PoiError::TooManyTags(tags.len()));
        }
        for (key, value) in &tags {
            let reason = if key.is_empty() {
                Some("tag keys must not be empty")
            } else if key.len() > MAX_TAG_KEY_BYTES {
                Some("tag keys must be at most 256 bytes")
            } else if value.len() > MAX_TAG_VALUE_BYTES {
                Some("tag values must be at most 4096 bytes")
            } else {
                None
            };
            if let Some(reason) = reason {
                let key = key.chars().take(64).collect();
                return Err(PoiError::Tag { key, reason });
            }
        }
        if let Some(r) = rating
            && !(r.is_finite() && (0.0..=MAX_RATING).contains(&r))
        {
            return Err(PoiError::Rating(r));
        }
        Ok(Self {
            id,
            position,
            name,
            category,
            tags,
            rating,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poi(category: &str, rating: Option<f64>) -> Result<Poi, PoiError> {
        Poi::new(
            "a".into(),
            1.0,
            2.0,
            "A".into(),
            category.into(),
            BTreeMap::new(),
            rating,
        )
    }

    #[test]
    fn validation_names_the_field_at_fault() {
        assert!(poi("cafe", Some(4.5)).is_ok());
        assert!(matches!(poi("Cafe", None), Err(PoiError::Category(_))));
        assert!(matches!(poi("", None), Err(PoiError::Category(_))));
        assert!(matches!(
            poi("cafe", Some(f64::NAN)),
            Err(PoiError::Rating(_))
        ));
        assert!(matches!(poi("cafe", Some(-1.0)), Err(PoiError::Rating(_))));
        let bad_lat = Poi::new(
            "a".into(),
            91.0,
            0.0,
            "".into(),
            "x".into(),
            BTreeMap::new(),
            None,
        );
        assert!(
            bad_lat
                .expect_err("lat 91 is refused")
                .to_string()
                .starts_with("lat")
        );
        let tags = BTreeMap::from([(String::new(), "v".to_string())]);
        let bad_tag = Poi::new("a".into(), 0.0, 0.0, "".into(), "x".into(), tags, None);
        assert!(matches!(bad_tag, Err(PoiError::Tag { .. })));
    }
}
