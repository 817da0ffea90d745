//! Bulk import: readers that turn a dump into validated [`Poi`] values plus per-record errors.
//!
//! Each format has its own module and the same shape: it streams its input (memory beyond the
//! POIs themselves stays bounded), and every bad record becomes a [`RecordError`] saying where
//! it was and what was wrong, while the rest keeps going. Only damage to the input as a whole
//! (an unreadable stream, a missing header column) is an [`ImportError`]. What to do with the
//! result (strict or lenient, upsert or replace) is the engine's business, not the reader's.

mod csv;
mod geojson;
mod ndjson;
mod osm;

use std::io::Read;
use std::path::Path;

use crate::pois::Poi;

pub use self::csv::read_csv;
pub use self::geojson::read_geojson;
pub use self::ndjson::read_ndjson;
pub use self::osm::{OSM_KEYS, read_osm_pbf};

/// How many record errors an import lists; the rest are only counted in `skipped`.
pub const MAX_LISTED_ERRORS: usize = 100;

/// A dump format Proxima can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One POI object a line.
    Ndjson,
    /// A FeatureCollection of Point features.
    GeoJson,
    /// An OpenStreetMap PBF extract.
    OsmPbf,
}

impl std::str::FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Self::Csv),
            "ndjson" => Ok(Self::Ndjson),
            "geojson" => Ok(Self::GeoJson),
            "osm-pbf" => Ok(Self::OsmPbf),
            other => Err(format!(
                "unsupported format {other:?}; supported: csv, ndjson, geojson, osm-pbf"
            )),
        }
    }
}

impl ImportFormat {
    /// The format a file name suggests: `.csv`, `.ndjson`/`.jsonl`, `.geojson`/`.json`,
    /// `.pbf` (as in `.osm.pbf`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let ext = name.rsplit('.').next()?;
        match ext {
            "csv" => Some(Self::Csv),
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "geojson" | "json" => Some(Self::GeoJson),
            "pbf" => Some(Self::OsmPbf),
            _ => None,
        }
    }
}

/// Where a bad record was in its input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// A 1-based line number (CSV, NDJSON); the CSV header is line 1.
    Line(u64),
    /// A 0-based index in a GeoJSON FeatureCollection's `features`.
    Feature(u64),
    /// An OpenStreetMap element, as `osm:node/<n>` or `osm:way/<n>`.
    Element(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Feature(n) => write!(f, "feature {n}"),
            Self::Element(e) => write!(f, "element {e}"),
        }
    }
}

/// One record that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Where it was.
    pub location: Location,
    /// What was wrong, naming the field.
    pub reason: String,
}

/// A whole input that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("reading the import failed: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not of the expected shape at all (e.g. a required CSV column is missing).
    #[error("{0}")]
    Malformed(String),
}

/// What a reader found: the good POIs, in input order, and an account of the bad records.
#[derive(Debug, Default)]
pub struct ParsedPois {
    /// Valid POIs, in input order (a later one with the same id wins when applied).
    pub pois: Vec<Poi>,
    /// Number of records that were not imported.
    pub skipped: u64,
    /// The first [`MAX_LISTED_ERRORS`] bad records.
    pub errors: Vec<RecordError>,
}

impl ParsedPois {
    /// Adds another reader's findings (files of one offline import).
    pub fn merge(&mut self, other: ParsedPois) {
        self.pois.extend(other.pois);
        self.skipped += other.skipped;
        let room = MAX_LISTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
    }

    fn accept(&mut self, poi: Poi) {
        self.pois.push(poi);
    }

    fn reject(&mut self, location: Location, reason: String) {
        self.skipped += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(RecordError { location, reason });
        }
    }
}

/// Reads a whole dump of a streaming format (every format but `osm-pbf`, which needs two
/// passes: see [`read_osm_pbf`]).
pub fn read_pois(format: ImportFormat, input: impl Read) -> Result<ParsedPois, ImportError> {
    match format {
        ImportFormat::Csv => read_csv(input),
        ImportFormat::Ndjson => read_ndjson(input),
        ImportFormat::GeoJson => read_geojson(input),
        ImportFormat::OsmPbf => Err(ImportError::Malformed(
            "osm-pbf is read from a file".to_string(),
        )),
    }
}

/// Converts a JSON property value to a tag value: strings as they are, other scalars as
/// their JSON text; `null` means no tag.
fn tag_value(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A reader that keeps the first I/O error it saw, so a parser that wraps I/O errors in its
/// own type (serde_json) still lets the import report the original (a body over its limit is
/// a 413, not a syntax error).
pub struct KeepIoError<R> {
    inner: R,
    error: Option<std::io::Error>,
}

impl<R: Read> KeepIoError<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, error: None }
    }

    /// The I/O error behind a parse failure, if there was one.
    pub fn take_error(&mut self) -> Option<ImportError> {
        self.error.take().map(ImportError::Io)
    }
}

impl<R: Read> Read for KeepIoError<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let stand_in = std::io::Error::new(e.kind(), e.to_string());
            self.error.get_or_insert(e);
            stand_in
        })
    }
}

/// The message of a malformed-input error; any other outcome fails the test.
#[cfg(test)]
fn malformed(result: Result<ParsedPois, ImportError>) -> String {
    match result {
        Err(ImportError::Malformed(message)) => message,
        other => panic!("expected a malformed-input error, got {other:?}"),
    }
}
