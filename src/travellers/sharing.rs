//! Who may see a traveller: [`Sharing`] and the one rule, [`Sharing::allows`].

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
