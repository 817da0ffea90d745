//! Who may see a traveller: [`Sharing`], and the one rule that decides it, for where it is
//! now ([`allows`]) and for where it was ([`allows_history`]); who may see a trip
//! ([`follows`]) and, while it runs, its traveller ([`TripShare`]); and, over all of them,
//! the privacy zones' clause ([`zone_allows`]): a position inside one of the traveller's
//! zones is shown to nobody but the traveller.
//!
//! A trip's followers see the trip's traveller while the trip runs, whatever the
//! traveller's own sharing, but only positions reported within the trip (`ts` at or past
//! its start): starting a trip does not show where the traveller was before it. When the
//! trip ends, or a follower is removed, that stops.
//!
//! A viewer sees only the history reported while it could see the traveller: when a
//! sharing change lets a viewer see it that could not before, the viewer's threshold
//! ([`Since`]) is set past the newest point already kept, so a traveller that goes
//! private, moves, and shares again does not hand its private trail to the new viewer. A
//! viewer allowed all along keeps its threshold through changes that keep it allowed.

use crate::ids::{IdError, validate_id};

/// The most viewers a `friends` list may name.
pub const MAX_VIEWERS: usize = 1000;

/// A traveller's visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the traveller itself (the default).
    #[default]
    Private,
    /// The traveller and exactly the listed viewers.
    Friends,
    /// Everyone.
    Public,
}

/// Visibility and the viewers list.
///
/// Invariant: `viewers` is sorted, without duplicates, at most [`MAX_VIEWERS`] valid ids
/// (checked when deserialized too).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SharingFields")]
pub struct Sharing {
    visibility: Visibility,
    viewers: Box<[Box<str>]>,
}

/// [`Sharing`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct SharingFields {
    visibility: Visibility,
    viewers: Vec<String>,
}

impl TryFrom<SharingFields> for Sharing {
    type Error = SharingError;

    fn try_from(f: SharingFields) -> Result<Self, SharingError> {
        Self::new(f.visibility, f.viewers)
    }
}

/// Why a sharing setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingError {
    /// Too many viewers.
    #[error("viewers: at most {MAX_VIEWERS} viewers are allowed, got {0}")]
    TooManyViewers(usize),
    /// A viewer id is malformed.
    #[error("viewers[{index}]: {error}")]
    Viewer {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        error: IdError,
    },
}

impl Sharing {
    /// Validates and normalizes (sorts, deduplicates) a setting.
    pub fn new(visibility: Visibility, viewers: Vec<String>) -> Result<Self, SharingError> {
        if viewers.len() > MAX_VIEWERS {
            return Err(SharingError::TooManyViewers(viewers.len()));
        }
        for (index, viewer) in viewers.iter().enumerate() {
            validate_id(viewer).map_err(|error| SharingError::Viewer { index, error })?;
        }
        let mut viewers: Vec<Box<str>> = viewers.into_iter().map(String::into_boxed_str).collect();
        viewers.sort_unstable();
        viewers.dedup();
        Ok(Self {
            visibility,
            viewers: viewers.into_boxed_slice(),
        })
    }

    /// The visibility.
    pub fn visibility(&self) -> Visibility {
        self.visibility
    }

    /// The viewers, sorted.
    pub fn viewers(&self) -> impl Iterator<Item = &str> {
        self.viewers.iter().map(|v| &**v)
    }

    /// Whether this is the default (private, nobody listed): nothing worth keeping.
    pub fn is_default(&self) -> bool {
        is_default(self.visibility, &self.viewers)
    }

    /// Whether `viewer` may see traveller `owner`. A traveller always sees itself; without a
    /// viewer only public travellers are visible.
    pub fn allows(&self, owner: &str, viewer: Option<&str>) -> bool {
        allows(self.visibility, &self.viewers, owner, viewer)
    }

    /// The parts, for compact storage.
    pub(crate) fn into_parts(self) -> (Visibility, Box<[Box<str>]>) {
        (self.visibility, self.viewers)
    }

    /// Reassembles parts taken by [`Sharing::into_parts`].
    pub(crate) fn from_parts(visibility: Visibility, viewers: Box<[Box<str>]>) -> Self {
        Self {
            visibility,
            viewers,
        }
    }
}

/// Since when each viewer of a traveller may see its history: the smallest point
/// timestamp each is shown. `i64::MIN`: everything kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Since {
    /// Everyone's, when the traveller is public.
    pub public: i64,
    /// Each listed viewer's, in the order of the sharing's (sorted) viewers; empty when
    /// every one of them sees everything.
    pub viewers: Vec<i64>,
}

impl Default for Since {
    fn default() -> Self {
        Self {
            public: i64::MIN,
            viewers: Vec::new(),
        }
    }
}

impl Since {
    /// The thresholds after a change from sharing `old` (with thresholds `self`) to `new`,
    /// where `cut` is one past the newest point kept (`i64::MIN` with none): a viewer
    /// allowed before keeps its threshold, a viewer newly allowed gets `cut`.
    pub(crate) fn after_change(
        &self,
        old: (Visibility, &[Box<str>]),
        new: (Visibility, &[Box<str>]),
        cut: i64,
    ) -> Self {
        let before = |viewer: Option<&str>| -> Option<i64> {
            match (old.0, viewer) {
                (Visibility::Public, _) => Some(self.public),
                (Visibility::Friends, Some(v)) => old
                    .1
                    .binary_search_by(|x| (**x).cmp(v))
                    .ok()
                    .map(|i| self.viewers.get(i).copied().unwrap_or(i64::MIN)),
                _ => None,
            }
        };
        let public = match new.0 {
            Visibility::Public => before(None).unwrap_or(cut),
            _ => i64::MIN,
        };
        let viewers: Vec<i64> = match new.0 {
            Visibility::Friends => new
                .1
                .iter()
                .map(|v| before(Some(v)).unwrap_or(cut))
                .collect(),
            _ => Vec::new(),
        };
        let viewers = if viewers.iter().all(|&s| s == i64::MIN) {
            Vec::new()
        } else {
            viewers
        };
        Self { public, viewers }
    }

    /// Whether every viewer sees everything kept (nothing worth storing).
    pub fn is_everything(&self) -> bool {
        self.public == i64::MIN && self.viewers.is_empty()
    }
}

/// Who follows a traveller's running trip, and since when its positions are theirs to see.
///
/// Invariant: `followers` sorted, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripShare {
    started_at: i64,
    followers: Box<[Box<str>]>,
}

impl TripShare {
    /// The share of a trip started at `started_at` with `followers` (sorted, each once).
    pub fn new(started_at: i64, followers: &[String]) -> Self {
        debug_assert!(followers.windows(2).all(|w| w[0] < w[1]));
        Self {
            started_at,
            followers: followers.iter().map(|f| f.as_str().into()).collect(),
        }
    }

    /// Whether `viewer` follows the trip and may see a position of `ts`.
    pub fn allows(&self, viewer: Option<&str>, ts: i64) -> bool {
        ts >= self.started_at
            && viewer.is_some_and(|v| self.followers.binary_search_by(|f| (**f).cmp(v)).is_ok())
    }

    /// The followers, sorted.
    pub fn followers(&self) -> impl Iterator<Item = &str> {
        self.followers.iter().map(|f| &**f)
    }
}

/// The rule for a trip: whether `viewer` may see traveller `owner`'s trip followed by
/// `followers` (sorted): the traveller itself and its followers, nobody else.
pub fn follows(owner: &str, followers: &[String], viewer: Option<&str>) -> bool {
    viewer.is_some_and(|v| v == owner || followers.binary_search_by(|f| f.as_str().cmp(v)).is_ok())
}

/// The privacy zones' clause of the rule: whether `viewer` may see traveller `owner` at
/// `at`, given its zones' shrouds (`None`: it has no zones). Inside a shroud only the
/// traveller itself sees it; this holds over every other clause, for every reader: fences
/// and live maps with no viewer, share links, followers, the heatmap.
#[inline]
pub fn zone_allows(
    shrouds: Option<&crate::zones::Shrouds>,
    owner: &str,
    viewer: Option<&str>,
    at: crate::geometry::LatLon,
) -> bool {
    match shrouds {
        None => true,
        Some(shrouds) => viewer == Some(owner) || !shrouds.hide(at),
    }
}

/// The rule of [`Sharing::is_default`], over the parts.
pub(crate) fn is_default(visibility: Visibility, viewers: &[Box<str>]) -> bool {
    visibility == Visibility::Private && viewers.is_empty()
}

/// The rule of [`Sharing::allows`], over the parts (`viewers` sorted).
pub(crate) fn allows(
    visibility: Visibility,
    viewers: &[Box<str>],
    owner: &str,
    viewer: Option<&str>,
) -> bool {
    match (visibility, viewer) {
        (Visibility::Public, _) => true,
        (_, Some(v)) if v == owner => true,
        (Visibility::Friends, Some(v)) => viewers.binary_search_by(|x| (**x).cmp(v)).is_ok(),
        _ => false,
    }
}

/// The rule for history: whether `viewer` may see traveller `owner`'s point of `ts`. It
/// must see the traveller ([`allows`]), and the point must be at or past its threshold in
/// `since` (the traveller itself sees all of its own).
pub(crate) fn allows_history(
    visibility: Visibility,
    viewers: &[Box<str>],
    since: &Since,
    owner: &str,
    viewer: Option<&str>,
    ts: i64,
) -> bool {
    if !allows(visibility, viewers, owner, viewer) {
        return false;
    }
    let threshold = match (visibility, viewer) {
        (_, Some(v)) if v == owner => i64::MIN,
        (Visibility::Public, _) => since.public,
        (Visibility::Friends, Some(v)) => viewers
            .binary_search_by(|x| (**x).cmp(v))
            .ok()
            .and_then(|i| since.viewers.get(i).copied())
            .unwrap_or(i64::MIN),
        _ => return false,
    };
    ts >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_visibility_admits_exactly_its_viewers() {
        let friends =
            Sharing::new(Visibility::Friends, vec!["bob".into(), "amy".into()]).expect("valid");
        assert!(friends.allows("me", Some("me")));
        assert!(friends.allows("me", Some("amy")));
        assert!(!friends.allows("me", Some("eve")));
        assert!(!friends.allows("me", None));
        let private = Sharing::default();
        assert!(private.allows("me", Some("me")));
        assert!(!private.allows("me", Some("amy")));
        let public = Sharing::new(Visibility::Public, vec![]).expect("valid");
        assert!(public.allows("me", None));
    }

    fn parts(s: &Sharing) -> (Visibility, &[Box<str>]) {
        (s.visibility, &s.viewers)
    }

    #[test]
    fn a_newly_allowed_viewer_sees_only_what_comes_after_it_was_allowed() {
        let private = Sharing::default();
        let public = Sharing::new(Visibility::Public, vec![]).expect("valid");
        let amy = Sharing::new(Visibility::Friends, vec!["amy".into()]).expect("valid");
        let amy_bob =
            Sharing::new(Visibility::Friends, vec!["amy".into(), "bob".into()]).expect("valid");
        // Private with points up to 100, then public: the public sees from 101.
        let since = Since::default().after_change(parts(&private), parts(&public), 101);
        let sees = |s: &Sharing, since: &Since, v: Option<&str>, ts| {
            allows_history(s.visibility, &s.viewers, since, "me", v, ts)
        };
        assert!(!sees(&public, &since, None, 100));
        assert!(sees(&public, &since, None, 101));
        assert!(
            sees(&public, &since, Some("me"), 1),
            "itself sees everything"
        );
        // Public to friends with amy, at 201: amy keeps seeing from 101.
        let since = since.after_change(parts(&public), parts(&amy), 201);
        assert!(sees(&amy, &since, Some("amy"), 150));
        assert!(!sees(&amy, &since, Some("amy"), 100));
        // bob joins at 301: from 301 for him, amy unchanged.
        let since = since.after_change(parts(&amy), parts(&amy_bob), 301);
        assert!(!sees(&amy_bob, &since, Some("bob"), 250));
        assert!(sees(&amy_bob, &since, Some("bob"), 301));
        assert!(sees(&amy_bob, &since, Some("amy"), 150));
        // Private, then friends again at 401: amy starts over.
        let since = since.after_change(parts(&amy_bob), parts(&private), 401);
        let since = since.after_change(parts(&private), parts(&amy), 401);
        assert!(!sees(&amy, &since, Some("amy"), 400));
        assert!(sees(&amy, &since, Some("amy"), 401));
        assert!(!sees(&amy, &since, Some("eve"), 500), "never a stranger");
    }

    #[test]
    fn bad_viewer_lists_are_refused() {
        assert!(matches!(
            Sharing::new(Visibility::Friends, vec!["ok".into(), "a/b".into()]),
            Err(SharingError::Viewer { index: 1, .. })
        ));
        let many = (0..=MAX_VIEWERS).map(|i| i.to_string()).collect();
        assert!(matches!(
            Sharing::new(Visibility::Friends, many),
            Err(SharingError::TooManyViewers(_))
        ));
    }
}
