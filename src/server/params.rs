//! Request parameters, parsed into typed values with errors naming the parameter at fault:
//! the query string ([`Params`]: numbers, a centre and radius, a box, a limit, a viewer,
//! POI filters, named choices) and the ids in paths ([`PathId`], [`StoredPoiId`]).
//!
//! Written here rather than with serde's URL-encoded deserializer because the API needs
//! repeated parameters (`category=a&category=b`), must refuse unknown and repeated-by-mistake
//! parameters, and must say which one was wrong in every error.

use std::fmt::Display;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::dto::ResponseFields;
use super::problem::ApiError;
use crate::geometry::{BBox, LatLon, MAX_RADIUS_M};
use crate::ids::{IdError, validate_id, validate_record_id};
use crate::pois::{PoiFilter, is_valid_category};

/// The query parameter naming the stream sequence a read waits for (any route's; taken by
/// the consistency layer).
pub const MIN_SEQ_PARAM: &str = "min_seq";

/// The largest page a query may ask for.
pub const MAX_LIMIT: usize = 1000;
/// The page size when none is given.
pub const DEFAULT_LIMIT: usize = 20;

/// A parsed query string; each parameter must be taken once, and [`Params::finish`] refuses
/// whatever was not taken.
///
/// Names and values are read in place from the request's URI (a clone of it shares its
/// bytes) and decoded into a `String` only when they hold a `%` or a `+`: the copying
/// parser this replaced made ~25 allocations to read a nearby query's four numbers.
pub struct Params {
    query: QueryText,
    pairs: Vec<Pair>,
    /// The first parameter whose name or value is not UTF-8 once percent-decoded (its name
    /// as far as it reads), refused when taken or at [`Params::finish`].
    not_utf8: Option<String>,
}

/// Where the query string's bytes are.
enum QueryText {
    /// In the request's URI.
    Uri(axum::http::Uri),
    /// Copied (a query string given as text).
    Owned(Box<str>),
}

impl QueryText {
    fn as_str(&self) -> &str {
        match self {
            Self::Uri(uri) => uri.query().unwrap_or(""),
            Self::Owned(text) => text,
        }
    }
}

/// A name or a value: a span of the query string that needs no decoding, or its decoding.
enum Text {
    Span(u32, u32),
    Decoded(String),
}

struct Pair {
    name: Text,
    value: Text,
    taken: bool,
}

/// The request's query string, parsed (an extractor that never fails: what is wrong with a
/// parameter is found when the handler takes it).
impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::over(QueryText::Uri(parts.uri.clone())))
    }
}

impl Params {
    /// Splits and percent-decodes a raw query string (`application/x-www-form-urlencoded`:
    /// `+` is a space). Bytes that are not UTF-8 once decoded are an error, not replaced:
    /// `viewer=a%FF` must not name the traveller `a\u{FFFD}`.
    pub fn parse(query: Option<&str>) -> Self {
        Self::over(QueryText::Owned(query.unwrap_or("").into()))
    }

    fn over(query: QueryText) -> Self {
        let text = query.as_str();
        let mut pairs = Vec::new();
        let mut not_utf8 = None;
        let mut at = 0;
        for pair in text.split('&') {
            let start = at;
            at += pair.len() + 1;
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value_start = start + name.len() + 1;
            match (
                form_decode(name, start),
                form_decode(value, value_start.min(start + pair.len())),
            ) {
                (Ok(name), Ok(value)) => pairs.push(Pair {
                    name,
                    value,
                    taken: false,
                }),
                (name, _) => {
                    let name = match name {
                        Ok(Text::Span(..)) => name_of(pair).to_string(),
                        Ok(Text::Decoded(name)) | Err(name) => name,
                    };
                    not_utf8.get_or_insert(name);
                }
            }
        }
        Self {
            query,
            pairs,
            not_utf8,
        }
    }

    fn text<'s>(&'s self, text: &'s Text) -> &'s str {
        match text {
            Text::Span(from, to) => &self.query.as_str()[*from as usize..*to as usize],
            Text::Decoded(decoded) => decoded,
        }
    }

    /// Every value given for `name`, marking them taken.
    pub fn all(&mut self, name: &str) -> Result<Vec<String>, ApiError> {
        self.check_utf8(name)?;
        let mut values = Vec::new();
        for i in 0..self.pairs.len() {
            if self.text(&self.pairs[i].name) == name {
                self.pairs[i].taken = true;
                values.push(self.text(&self.pairs[i].value).to_string());
            }
        }
        Ok(values)
    }

    fn check_utf8(&self, name: &str) -> Result<(), ApiError> {
        match self.not_utf8.as_deref() == Some(name) {
            true => Err(not_utf8(name)),
            false => Ok(()),
        }
    }

    /// The single value of `name`, if given, as it reads in the query, marking it taken;
    /// repeating it is an error.
    fn single(&mut self, name: &str) -> Result<Option<&str>, ApiError> {
        self.check_utf8(name)?;
        let mut found = None;
        for i in 0..self.pairs.len() {
            if self.text(&self.pairs[i].name) == name {
                self.pairs[i].taken = true;
                if found.replace(i).is_some() {
                    return Err(ApiError::bad_parameter(format!(
                        "{name}: must be given at most once"
                    )));
                }
            }
        }
        Ok(found.map(|i| self.text(&self.pairs[i].value)))
    }

    /// The single raw value of `name`, if given; repeating it is an error.
    pub fn raw(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        Ok(self.single(name)?.map(str::to_string))
    }

    /// The value of `name` parsed as `T`, if given.
    pub fn optional<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        match self.single(name)? {
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
        self.optional::<usize>("limit")
            .map_err(|_| ApiError::bad_parameter(LIMIT_RULE))
            .and_then(|n| limit(n).map_err(ApiError::bad_parameter))
    }

    /// `name` parsed by its type's own rule, if given: for named choices (`format`,
    /// `mode`, `layer`), whose parse error says what the choices are.
    pub fn choice<T>(&mut self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.single(name)?
            .map(|text| text.parse::<T>())
            .transpose()
            .map_err(|e| ApiError::bad_parameter(format!("{name}: {e}")))
    }

    /// The `lat` and `lon` of a query's centre, both required.
    pub fn center(&mut self) -> Result<LatLon, ApiError> {
        let lat = self.required::<f64>("lat")?;
        let lon = self.required::<f64>("lon")?;
        LatLon::new(lat, lon).map_err(|e| ApiError::bad_parameter(e.to_string()))
    }

    /// `radius_m`, if given: 0 to [`MAX_RADIUS_M`] (half the Earth's circumference).
    pub fn radius(&mut self) -> Result<Option<f64>, ApiError> {
        match self.finite("radius_m")? {
            Some(r) if !(0.0..=MAX_RADIUS_M).contains(&r) => Err(ApiError::bad_parameter(format!(
                "radius_m: must be from 0 to {MAX_RADIUS_M}, got {r}"
            ))),
            radius => Ok(radius),
        }
    }

    /// `bbox=minLon,minLat,maxLon,maxLat`, required.
    pub fn bbox(&mut self) -> Result<BBox, ApiError> {
        let text = self
            .single("bbox")?
            .ok_or_else(|| ApiError::bad_parameter("bbox: required parameter is missing"))?;
        parse_bbox(text)
    }

    /// `viewer`, if given: an id.
    pub fn viewer(&mut self) -> Result<Option<String>, ApiError> {
        let viewer = self.raw("viewer")?;
        if let Some(v) = &viewer {
            validate_id(v).map_err(|e| ApiError::bad_parameter(format!("viewer: {e}")))?;
        }
        Ok(viewer)
    }

    /// The POI filter: any number of `category`, and `min_rating`.
    pub fn poi_filter(&mut self) -> Result<PoiFilter, ApiError> {
        let categories = self.all("category")?;
        check_categories(&categories).map_err(ApiError::bad_parameter)?;
        let min_rating = self.finite("min_rating")?;
        Ok(PoiFilter {
            categories,
            min_rating,
        })
    }

    /// `fields=`: the fields of each POI to answer with (every field without it);
    /// `with_distance`: whether `distance_m` is one (nearby).
    pub fn fields(&mut self, with_distance: bool) -> Result<ResponseFields, ApiError> {
        match self.single("fields")? {
            None => Ok(ResponseFields::ALL),
            Some(text) => ResponseFields::parse(text, with_distance)
                .map_err(|e| ApiError::bad_parameter(format!("fields: {e}"))),
        }
    }

    /// Refuses any parameter that was not taken.
    pub fn finish(self) -> Result<(), ApiError> {
        if let Some(name) = &self.not_utf8 {
            return Err(not_utf8(name));
        }
        // `min_seq` is every read's, taken by the consistency layer before the route.
        let unknown = self
            .pairs
            .iter()
            .map(|p| (self.text(&p.name), p.taken))
            .find(|&(name, taken)| !taken && name != MIN_SEQ_PARAM);
        match unknown {
            Some((name, _)) => Err(ApiError::bad_parameter(format!(
                "{name}: unknown parameter"
            ))),
            None => Ok(()),
        }
    }
}

/// For the routes that take no query parameter: any one given is refused, named, as the
/// routes with parameters refuse those they do not know.
pub struct NoParams;

impl<S: Send + Sync> FromRequestParts<S> for NoParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.uri.query() {
            None | Some("") => Ok(Self),
            query => Params::parse(query).finish().map(|()| Self),
        }
    }
}

/// One name or value of a query string, `+` as a space and percent-decoded: its span
/// (`text` starts at byte `at` of the query) when it holds neither, as most do; `Err` holds
/// it decoded lossily when the bytes are not UTF-8.
fn form_decode(text: &str, at: usize) -> Result<Text, String> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        // A query string longer than 4 GiB is refused long before (hyper's URI limit).
        let span = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        return Ok(Text::Span(span(at), span(at + text.len())));
    }
    let spaced = text.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
    String::from_utf8(bytes)
        .map(Text::Decoded)
        .map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The name part of a `name=value` pair.
fn name_of(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(name, _)| name)
}

fn not_utf8(name: &str) -> ApiError {
    ApiError::bad_parameter(format!("{name}: not valid UTF-8 once percent-decoded"))
}

const LIMIT_RULE: &str = "limit: must be an integer from 1 to 1000";
const _: () = assert!(MAX_LIMIT == 1000, "LIMIT_RULE names the maximum");

/// A page size as given (query string or body): 1 to [`MAX_LIMIT`], default
/// [`DEFAULT_LIMIT`].
pub fn limit(given: Option<usize>) -> Result<usize, String> {
    match given {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(LIMIT_RULE.to_string()),
    }
}

/// Refuses the first category that is not one (query string or body).
pub fn check_categories(categories: &[String]) -> Result<(), String> {
    match categories.iter().find(|c| !is_valid_category(c)) {
        Some(bad) => Err(format!(
            "category: {bad:?} is not a category (lowercase letters, digits, '_' or '-', at most 64 bytes)"
        )),
        None => Ok(()),
    }
}

/// A box written `minLon,minLat,maxLon,maxLat`.
fn parse_bbox(text: &str) -> Result<BBox, ApiError> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let numbers: Option<Vec<f64>> = parts.iter().map(|p| p.parse::<f64>().ok()).collect();
    match numbers.as_deref() {
        Some(&[min_lon, min_lat, max_lon, max_lat]) => {
            BBox::new(min_lon, min_lat, max_lon, max_lat)
                .map_err(|e| ApiError::bad_parameter(format!("bbox: {e}")))
        }
        _ => Err(ApiError::bad_parameter(format!(
            "bbox: expected four numbers minLon,minLat,maxLon,maxLat, got {text:?}"
        ))),
    }
}

/// Checks the two ids of a path like `/v1/travellers/{id}/devices/{device}` against the
/// rule for ids a client chooses; a bad one is a 400 naming `id`, or `second` for the other.
pub fn check_path_ids(id: &str, (second, other): (&str, &str)) -> Result<(), ApiError> {
    validate_id(id).map_err(|e| ApiError::bad_parameter(format!("id: {e}")))?;
    validate_id(other).map_err(|e| ApiError::bad_parameter(format!("{second}: {e}")))
}

/// The `{id}` of a path, held to the rule for ids a client chooses (an extractor: a bad id
/// is answered with a 400 naming `id` before the handler runs).
#[derive(Debug)]
pub struct PathId(pub String);

/// The `{id}` of a path naming a stored POI, which may hold a `/` (sent as `%2F`) if it was
/// imported (`osm:node/42`).
#[derive(Debug)]
pub struct StoredPoiId(pub String);

macro_rules! path_id_extractor {
    ($extractor:ident, $rule:path) => {
        impl<S: Send + Sync> FromRequestParts<S> for $extractor {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                path_id_by(parts, state, $rule).await.map(Self)
            }
        }
    };
}

path_id_extractor!(PathId, validate_id);
path_id_extractor!(StoredPoiId, validate_record_id);

async fn path_id_by<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    rule: fn(&str) -> Result<(), IdError>,
) -> Result<String, ApiError> {
    let Path(id) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_parameter(format!("id: {e}")))?;
    rule(&id).map_err(|e| ApiError::bad_parameter(format!("id: {e}")))?;
    Ok(id)
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
