//! External identifiers: the one rule every id in the API follows (POIs and travellers alike).

/// The longest id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is the empty string.
    #[error("id must not be empty")]
    Empty,
    /// The id is longer than [`MAX_ID_BYTES`].
    #[error("id must be at most {MAX_ID_BYTES} bytes, got {0}")]
    TooLong(usize),
    /// The id contains a `/` or a control character.
    #[error("id must be printable and must not contain '/', found {0:?}")]
    BadChar(char),
}

/// Checks that `id` is 1 to 128 bytes of printable characters without `/`: the rule of
/// `docs/API.md` for ids a client chooses (`PUT /v1/pois/{id}`, travellers).
pub fn validate_id(id: &str) -> Result<(), IdError> {
    check(id, |c| c == '/' || c.is_control())
}

/// The rule for ids of stored POIs, which also admits `/`: `docs/API.md` itself gives imported
/// OpenStreetMap POIs ids like `osm:node/42` (and Overpass exports use `node/42`). Such an id
/// travels percent-encoded (`%2F`) in a path.
pub fn validate_record_id(id: &str) -> Result<(), IdError> {
    check(id, char::is_control)
}

/// The longest owner id, in bytes: `traveller:` and the longest traveller id.
pub const MAX_OWNER_BYTES: usize = MAX_ID_BYTES + 32;

/// Checks an owner id (who made a fence: `open`, `key:<hex>`, `traveller:<id>`): 1 to
/// [`MAX_OWNER_BYTES`] printable bytes without `/`, so that `owner/id` names a fence
/// unambiguously.
pub fn validate_owner(owner: &str) -> Result<(), IdError> {
    if owner.len() > MAX_OWNER_BYTES {
        return Err(IdError::TooLong(owner.len()));
    }
    match owner.chars().find(|c| *c == '/' || c.is_control()) {
        Some(c) => Err(IdError::BadChar(c)),
        None if owner.is_empty() => Err(IdError::Empty),
        None => Ok(()),
    }
}

/// A fence's name: its owner and its id (unique per owner). Events, streams and quotas are
/// all kept per owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FenceKey {
    /// Who made it.
    pub owner: std::sync::Arc<str>,
    /// Its id, as its owner named it.
    pub id: std::sync::Arc<str>,
}

impl FenceKey {
    /// The key of `owner`'s fence `id`.
    pub fn new(owner: &str, id: &str) -> Self {
        Self {
            owner: owner.into(),
            id: id.into(),
        }
    }
}

impl std::fmt::Display for FenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.id)
    }
}

fn check(id: &str, bad: impl Fn(char) -> bool) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(id.len()));
    }
    match id.chars().find(|c| bad(*c)) {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_printable_ids_up_to_the_limit() {
        assert_eq!(validate_id("café:42"), Ok(()));
        assert_eq!(validate_id(&"x".repeat(MAX_ID_BYTES)), Ok(()));
    }

    #[test]
    fn refuses_empty_long_slashed_and_control_ids() {
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(validate_id(&"x".repeat(129)), Err(IdError::TooLong(129)));
        assert_eq!(validate_id("a/b"), Err(IdError::BadChar('/')));
        assert_eq!(validate_id("a\nb"), Err(IdError::BadChar('\n')));
    }

    #[test]
    fn stored_ids_may_hold_a_slash_but_no_control_character() {
        assert_eq!(validate_record_id("osm:node/42"), Ok(()));
        assert_eq!(validate_record_id("a\tb"), Err(IdError::BadChar('\t')));
        assert_eq!(validate_record_id(""), Err(IdError::Empty));
    }
}
