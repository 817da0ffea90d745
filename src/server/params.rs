//! Query-string parsing that names the parameter at fault.
//!
//! Written here rather than with serde's URL-encoded deserializer because the API needs
//! repeated parameters (`category=a&category=b`), must refuse unknown and repeated-by-mistake
//! parameters, and must say which one was wrong in every error.

use std::str::FromStr;

use super::problem::ApiError;

/// The largest page a query may ask for.
pub const MAX_LIMIT: usize = 1000;
/// The page size when none is given.
pub const DEFAULT_LIMIT: usize = 20;

/// A parsed query string; each parameter must be taken once, and [`Params::finish`] refuses
/// whatever was not taken.
pub struct Params {
    pairs: Vec<(String, String, bool)>,
}

impl Params {
    /// Splits and percent-decodes a raw query string.
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned(), false))
            .collect();
        Self { pairs }
    }

    /// Every value given for `name`, marking them taken.
    pub fn all(&mut self, name: &str) -> Vec<String> {
        self.pairs
            .iter_mut()
            .filter(|(k, _, _)| k == name)
            .map(|(_, v, taken)| {
                *taken = true;
                v.clone()
            })
            .collect()
    }

    /// The single raw value of `name`, if given; repeating it is an error.
    pub fn raw(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(ApiError::bad_parameter(format!(
                "{name}: must be given at most once"
            ))),
        }
    }

    /// The value of `name` parsed as `T`, if given.
    pub fn optional<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(text) => text.trim().parse::<T>().map(Some).map_err(|_| {
                ApiError::bad_parameter(format!(
                    "{name}: expected {}, got {text:?}",
                    expected::<T>()
                ))
            }),
        }
    }

    /// The value of `name` parsed as `T`; missing is an error.
    pub fn required<T: FromStr>(&mut self, name: &str) -> Result<T, ApiError> {
        self.optional(name)?.ok_or_else(|| {
            ApiError::bad_parameter(format!("{name}: required parameter is missing"))
        })
    }

    /// A finite number, if given.
    pub fn finite(&mut self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.optional::<f64>(name)? {
            Some(v) if !v.is_finite() => Err(ApiError::bad_parameter(format!(
                "{name}: must be a finite number, got {v}"
            ))),
            other => Ok(other),
        }
    }

    /// `limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub fn limit(&mut self) -> Result<usize, ApiError> {
        match self.optional::<usize>("limit") {
            Ok(None) => Ok(DEFAULT_LIMIT),
            Ok(Some(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_parameter(format!(
                "limit: must be an integer from 1 to {MAX_LIMIT}"
            ))),
        }
    }

    /// Refuses any parameter that was not taken.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.into_iter().find(|(_, _, taken)| !taken) {
            Some((name, _, _)) => Err(ApiError::bad_parameter(format!(
                "{name}: unknown parameter"
            ))),
            None => Ok(()),
        }
    }
}

/// How to describe the expected value of a parameter of type `T` to a person.
fn expected<T>() -> &'static str {
    match std::any::type_name::<T>() {
        "f64" | "f32" => "a number",
        "usize" | "u64" | "u32" | "u8" => "a non-negative integer",
        "i64" | "i32" => "an integer",
        "bool" => "true or false",
        _ => "a valid value",
    }
}
