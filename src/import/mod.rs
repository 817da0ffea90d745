//! Bulk import: readers that turn a dump into validated [`Poi`] values plus per-record errors.
//!
//! Each format has its own module and the same shape: it streams its input (memory beyond the
//! POIs themselves stays bounded), and every bad record becomes a [`RecordError`] saying where
//! it was and what was wrong, while the rest keeps going. Only damage to the input as a whole
//! (an unreadable stream, a missing header column) is an [`ImportError`]. What to do with the
//! result (strict or lenient, upsert or replace) is the engine's business, not the reader's.

mod csv;

use std::io::Read;

use crate::pois::Poi;

pub use self::csv::read_csv;

/// How many record errors an import lists; the rest are only counted in `skipped`.
pub const MAX_LISTED_ERRORS: usize = 100;

/// A dump format Proxima can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma-separated values with a header row.
    Csv,
}

impl std::str::FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Self::Csv),
            other => Err(format!("unsupported format {other:?}; supported: csv")),
        }
    }
}

/// Where a bad record was in its input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// A 1-based line number (CSV, NDJSON); the CSV header is line 1.
    Line(u64),
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

/// Reads a whole dump of the given format.
pub fn read_pois(format: ImportFormat, input: impl Read) -> Result<ParsedPois, ImportError> {
    match format {
        ImportFormat::Csv => read_csv(input),
    }
}
