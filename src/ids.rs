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

/// Checks that `id` is 1 to 128 bytes of printable characters without `/`.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(id.len()));
    }
    match id.chars().find(|c| *c == '/' || c.is_control()) {
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
}
