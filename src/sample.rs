//! The bundled sample data, compiled into the binary so that `proxima serve` works from any
//! directory: every city of the world with at least 15,000 people (GeoNames, CC BY 4.0).

use crate::engine::{Engine, EngineError, ImportMode, ImportSummary};
use crate::import::{ImportError, ParsedPois, read_csv};

/// `data/cities15000.csv`.
const CITIES_CSV: &[u8] = include_bytes!("../data/cities15000.csv");

/// Why the sample could not be loaded (a build defect: the bundled file is checked by tests).
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The bundled file did not parse.
    #[error("bundled sample: {0}")]
    Read(#[from] ImportError),
    /// The engine refused it.
    #[error("bundled sample: {0}")]
    Apply(#[from] EngineError),
}

/// The bundled cities, parsed.
pub fn cities() -> Result<ParsedPois, ImportError> {
    read_csv(CITIES_CSV)
}

/// Loads the bundled cities as POIs of category `city`, in one import.
pub fn load(engine: &Engine) -> Result<ImportSummary, SampleError> {
    let (summary, ticket) = engine.import_pois(cities()?, ImportMode::Upsert, true)?;
    ticket.wait().map_err(EngineError::from)?;
    Ok(summary)
}
