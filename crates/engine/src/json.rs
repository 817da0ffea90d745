//! JSON parsing whose errors name the field at fault (`tags.cuisine: invalid type: ...`),
//! shared by request bodies, position batches and NDJSON imports.

use serde::Deserialize;

/// A JSON value that did not parse, and the path of the field at fault (if not the whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// `tags.cuisine`, or `None` when the fault is in the value as a whole.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses one JSON value of type `T` from `bytes`, requiring nothing after it.
///
/// Valid input is parsed by `serde_json` alone; only input that fails is parsed again with
/// the path tracked. Tracking the path on every value doubled the cost of parsing a
/// position update (callgrind: ~2,900 instructions a single-update body); the second parse
/// meets the same error at the same place, since both parse the same bytes the same way.
pub fn from_slice_named<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, JsonError> {
    serde_json::from_slice(bytes).or_else(|_| from_slice_tracking_path(bytes))
}

/// [`from_slice_named`]'s slow path: parses with the path of every field tracked.
fn from_slice_tracking_path<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return syntax_error(&inner, &path);
        }
        JsonError {
            path: (path != ".").then_some(path),
            message: inner.to_string(),
        }
    })?;
    de.end().map_err(|e| syntax_error(&e, "."))?;
    Ok(value)
}

/// A syntax error is no field's fault: it says where the text broke (line and column) and
/// the path read so far, if any (`?` is a path segment not yet known).
fn syntax_error(inner: &serde_json::Error, path: &str) -> JsonError {
    let full = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let what = full.strip_suffix(&position).unwrap_or(&full);
    let known = path
        .split('.')
        .take_while(|segment| *segment != "?" && !segment.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    let after = if known.is_empty() {
        String::new()
    } else {
        format!(", in `{known}`")
    };
    JsonError {
        path: None,
        message: format!(
            "JSON syntax error at line {}, column {}{after}: {what}",
            inner.line(),
            inner.column()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read only through Debug
    struct Item {
        tags: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn errors_name_the_path_and_trailing_input_is_refused() {
        let err = from_slice_named::<Item>(br#"{"tags": {"k": 1}}"#).expect_err("a number tag");
        assert!(err.to_string().starts_with("tags.k: invalid type"), "{err}");
        let err = from_slice_named::<Item>(br#"{"tags": {}} x"#).expect_err("trailing input");
        assert_eq!(err.path, None);
        assert!(err.message.contains("trailing"), "{err}");
    }

    #[test]
    fn a_json_syntax_error_says_where_the_text_broke_not_a_field_named_question_mark() {
        let err = from_slice_named::<Item>(b"{\"tags\": {\"k\": \"v\",\n  \"j\": }}")
            .expect_err("a missing value");
        assert_eq!(err.path, None, "{err}");
        assert_eq!(
            err.message,
            "JSON syntax error at line 2, column 8, in `tags.j`: expected value"
        );
        let err = from_slice_named::<Item>(b"{\"tags\": {").expect_err("cut short");
        assert!(
            err.message
                .starts_with("JSON syntax error at line 1, column 10, in `tags`: EOF while"),
            "{err}"
        );
        let err = from_slice_named::<Item>(b"{,}").expect_err("a stray comma");
        assert_eq!(err.path, None);
        assert!(!err.to_string().contains('?'), "{err}");
        assert!(
            err.message
                .starts_with("JSON syntax error at line 1, column 2: "),
            "{err}"
        );
    }
}
