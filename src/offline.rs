//! `proxima import`: bulk import into a data directory without a server, with a progress bar
//! and a closing summary. The import is applied as one logged mutation and a snapshot is
//! written at the end, so the next `proxima serve` starts from it at once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::SystemClock;
use crate::config::ImportConfig;
use crate::engine::{Engine, EngineConfig, EngineError, LiveConfig};
use crate::import::{ImportError, ImportFormat, ParsedPois, RecordError, read_osm_pbf, read_pois};
use crate::persist::wal::WalOptions;
use crate::pois::CursorKey;
use crate::travellers::TravellerConfig;

/// Why an offline import failed. Nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// A file's format could not be guessed.
    #[error(
        "{0}: cannot tell the format from the file name; pass --format csv|ndjson|geojson|osm-pbf"
    )]
    UnknownFormat(PathBuf),
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ImportError,
    },
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What an offline import did.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineSummary {
    /// Files read.
    pub files: usize,
    /// POIs imported.
    pub imported: u64,
    /// Records skipped.
    pub skipped: u64,
    /// The first bad records.
    pub errors: Vec<RecordError>,
    /// Seconds taken, reading to snapshot.
    pub seconds: f64,
}

/// Runs an offline import.
pub fn import(config: &ImportConfig) -> Result<OfflineSummary, OfflineError> {
    let started = Instant::now();
    let formats = config
        .files
        .iter()
        .map(|path| {
            config
                .format
                .or_else(|| ImportFormat::from_path(path))
                .ok_or_else(|| OfflineError::UnknownFormat(path.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Reading an OSM file takes two passes over it.
    let total: u64 = config
        .files
        .iter()
        .zip(&formats)
        .map(|(path, format)| {
            let size = fs_err::metadata(path).map_or(0, |m| m.len());
            if *format == ImportFormat::OsmPbf {
                2 * size
            } else {
                size
            }
        })
        .sum();
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let mut parsed = ParsedPois::default();
    for (path, format) in config.files.iter().zip(&formats) {
        bar.set_message(path.display().to_string());
        let read = read_file(path, *format, &bar).map_err(|source| OfflineError::Read {
            path: path.clone(),
            source,
        })?;
        parsed.merge(read);
    }
    bar.finish_and_clear();

    let engine = Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock: Arc::new(SystemClock),
        travellers: TravellerConfig {
            trail_capacity: 32,
            ttl_ms: i64::MAX / 4,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    });
    engine.recover(&config.data_dir, WalOptions::default())?;
    let summary = engine
        .import_pois(parsed, config.mode, config.strict)?
        .wait()?;
    engine.close()?;
    Ok(OfflineSummary {
        files: config.files.len(),
        imported: summary.imported,
        skipped: summary.skipped,
        errors: summary.errors,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn read_file(
    path: &Path,
    format: ImportFormat,
    bar: &ProgressBar,
) -> Result<ParsedPois, ImportError> {
    let open = || -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(bar.wrap_read(fs_err::File::open(path)?)))
    };
    match format {
        ImportFormat::OsmPbf => read_osm_pbf(open),
        other => read_pois(other, open()?),
    }
}

impl std::fmt::Display for OfflineSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = self.imported + self.skipped;
        writeln!(
            f,
            "imported {} POIs, skipped {}, from {} file(s) in {:.2} s ({:.0} rows/s)",
            self.imported,
            self.skipped,
            self.files,
            self.seconds,
            rows as f64 / self.seconds.max(1e-9)
        )?;
        for e in &self.errors {
            writeln!(f, "  {}: {}", e.location, e.reason)?;
        }
        if self.skipped > self.errors.len() as u64 {
            writeln!(
                f,
                "  ... and {} more",
                self.skipped - self.errors.len() as u64
            )?;
        }
        Ok(())
    }
}
