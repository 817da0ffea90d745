//! Segment files: creating one (header written and made durable), listing them in order,
//! and timed fsyncs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Counters, HEADER, MAGIC, VERSION};
use crate::persist::{PersistError, numbered_files, sync_dir};

/// A segment open for appending.
pub(super) struct Segment {
    pub(super) file: fs_err::File,
    /// Its size so far.
    pub(super) bytes: u64,
}

impl Segment {
    /// Creates `<dir>/<first_seq, 20 digits>.wal` with its header, durable (file and
    /// directory entry) before any record is written to it.
    pub(super) fn create(dir: &Path, first_seq: u64) -> Result<Self, PersistError> {
        let path = dir.join(format!("{first_seq:020}.wal"));
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        file.write_all(&header)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Self {
            file,
            bytes: HEADER as u64,
        })
    }
}

/// The segment files in `dir`, by first sequence number.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    numbered_files(dir, "", ".wal")
}

/// fsyncs a segment file's data and counts it.
pub(super) fn sync_file(file: &fs_err::File, counters: &Counters) -> Result<(), PersistError> {
    let started = Instant::now();
    file.sync_data()?;
    counters.fsyncs.fetch_add(1, Ordering::Relaxed);
    counters
        .fsync_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(())
}
