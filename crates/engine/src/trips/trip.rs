//! [`Trip`]: one traveller's trip, its time window and title, checked when made and when
//! read back from a log or a snapshot.

use crate::ids::{IdError, validate_id};

/// The longest title, bytes.
pub const MAX_TITLE_BYTES: usize = 200;

/// One traveller's trip. Its route is every position the traveller reports with
/// `started_at <= ts <= ended_at` (no end while it goes on).
///
/// Invariant: valid ids, a title of at most [`MAX_TITLE_BYTES`] without control
/// characters, `started_at <= ended_at` (checked when deserialized too).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TripFields")]
pub struct Trip {
    id: String,
    traveller: String,
    title: String,
    started_at: i64,
    ended_at: Option<i64>,
}

/// [`Trip`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct TripFields {
    id: String,
    traveller: String,
    title: String,
    started_at: i64,
    ended_at: Option<i64>,
}

impl TryFrom<TripFields> for Trip {
    type Error = TripFieldError;

    fn try_from(f: TripFields) -> Result<Self, TripFieldError> {
        Self::new(f.id, f.traveller, f.title, f.started_at, f.ended_at)
    }
}

/// Why a trip's fields were refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TripFieldError {
    /// The trip's id is malformed.
    #[error("id: {0}")]
    Id(IdError),
    /// The traveller's id is malformed.
    #[error("traveller: {0}")]
    Traveller(IdError),
    /// The title is too long or holds control characters.
    #[error("title: {0}")]
    Title(String),
    /// The trip ends before it starts.
    #[error("ended_at: {ended_at} is before started_at {started_at}")]
    EndsBeforeStart {
        /// When it starts.
        started_at: i64,
        /// When it ends.
        ended_at: i64,
    },
}

impl std::fmt::Display for Trip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trip {:?} of {:?}", self.id, self.traveller)
    }
}

impl Trip {
    /// A checked trip.
    pub fn new(
        id: String,
        traveller: String,
        title: String,
        started_at: i64,
        ended_at: Option<i64>,
    ) -> Result<Self, TripFieldError> {
        validate_id(&id).map_err(TripFieldError::Id)?;
        validate_id(&traveller).map_err(TripFieldError::Traveller)?;
        if title.len() > MAX_TITLE_BYTES {
            return Err(TripFieldError::Title(format!(
                "at most {MAX_TITLE_BYTES} bytes, got {}",
                title.len()
            )));
        }
        if title.chars().any(char::is_control) {
            return Err(TripFieldError::Title(
                "control characters are not allowed".into(),
            ));
        }
        if let Some(ended_at) = ended_at
            && ended_at < started_at
        {
            return Err(TripFieldError::EndsBeforeStart {
                started_at,
                ended_at,
            });
        }
        Ok(Self {
            id,
            traveller,
            title,
            started_at,
            ended_at,
        })
    }

    /// A trip from parts that were checked when it was made.
    pub(crate) fn from_checked_parts(
        id: String,
        traveller: String,
        title: String,
        started_at: i64,
        ended_at: Option<i64>,
    ) -> Self {
        Self {
            id,
            traveller,
            title,
            started_at,
            ended_at,
        }
    }

    /// Its parts: id, traveller, title, start and end.
    pub fn into_parts(self) -> (String, String, String, i64, Option<i64>) {
        (
            self.id,
            self.traveller,
            self.title,
            self.started_at,
            self.ended_at,
        )
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The traveller it belongs to.
    pub fn traveller(&self) -> &str {
        &self.traveller
    }

    /// Its title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// When it starts, Unix ms.
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// When it ends, Unix ms; `None` while it goes on.
    pub fn ended_at(&self) -> Option<i64> {
        self.ended_at
    }

    /// The last instant its route holds (`i64::MAX` while it goes on).
    pub fn until(&self) -> i64 {
        self.ended_at.unwrap_or(i64::MAX)
    }

    /// Whether a position of `ts` belongs to its route.
    pub fn holds(&self, ts: i64) -> bool {
        self.started_at <= ts && ts <= self.until()
    }

    /// Whether it goes on at `now_ms`: started, and not yet ended.
    pub fn runs_at(&self, now_ms: i64) -> bool {
        self.started_at <= now_ms && self.ended_at.is_none_or(|end| now_ms < end)
    }

    /// Whether its window shares an instant with `other`'s.
    pub fn overlaps(&self, other: &Trip) -> bool {
        self.started_at <= other.until() && other.started_at <= self.until()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(start: i64, end: Option<i64>) -> Trip {
        Trip::new("t".into(), "ann".into(), "".into(), start, end).expect("valid")
    }

    #[test]
    fn windows_hold_their_ends_and_overlap_when_they_share_an_instant() {
        let t = trip(10, Some(20));
        assert!(t.holds(10) && t.holds(20) && !t.holds(9) && !t.holds(21));
        assert!(t.runs_at(10) && t.runs_at(19) && !t.runs_at(20));
        assert!(t.overlaps(&trip(20, None)));
        assert!(!t.overlaps(&trip(21, None)));
        assert!(trip(0, None).overlaps(&trip(1_000, Some(2_000))));
    }

    #[test]
    fn bad_fields_are_named() {
        let e = Trip::new("t".into(), "a/b".into(), "".into(), 0, None).expect_err("refused");
        assert!(e.to_string().starts_with("traveller:"), "{e}");
        let e = Trip::new("t".into(), "ann".into(), "x".repeat(201), 0, None).expect_err("refused");
        assert!(e.to_string().starts_with("title:"), "{e}");
        let e = Trip::new("t".into(), "ann".into(), "".into(), 5, Some(4)).expect_err("refused");
        assert!(e.to_string().starts_with("ended_at:"), "{e}");
    }
}
