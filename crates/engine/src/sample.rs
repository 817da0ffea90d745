//! The bundled sample data, compiled into the binary so that `proxima serve` works from any
//! directory: every city of the world with at least 15,000 people (GeoNames, CC BY 4.0) and
//! an OpenStreetMap extract of central Helsinki (© OpenStreetMap contributors, ODbL 1.0).

use crate::engine::{Engine, EngineError, ImportMode};
use crate::import::{ImportError, ParsedPois, read_csv, read_osm_pbf};

/// `data/cities15000.csv`.
const CITIES_CSV: &[u8] = include_bytes!("../../../data/cities15000.csv");
/// `data/helsinki.osm.pbf`.
const HELSINKI_PBF: &[u8] = include_bytes!("../../../data/helsinki.osm.pbf");

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

/// The POIs of the bundled Helsinki extract.
pub fn helsinki() -> Result<ParsedPois, ImportError> {
    read_osm_pbf(|| Ok(HELSINKI_PBF))
}

/// Loads the bundled cities (as POIs of category `city`) and the Helsinki extract, one
/// import each. Returns the number of POIs loaded.
pub fn load(engine: &Engine) -> Result<u64, SampleError> {
    let mut loaded = 0;
    for parsed in [cities()?, helsinki()?] {
        let summary = engine
            .import_pois(parsed, ImportMode::Upsert, false)?
            .wait()?;
        loaded += summary.imported;
    }
    Ok(loaded)
}
