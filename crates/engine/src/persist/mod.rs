//! Durable storage, generic over what it stores: a write-ahead log of framed records and
//! checksummed snapshot files. It knows bytes, framing, versions and checksums; it knows
//! nothing of POIs or travellers (the engine decides what the records mean).
//!
//! Every file starts with an 8-byte magic and a `u32` format version; a reader refuses a
//! version newer than it knows with an error saying so, and keeps readers for older ones.

pub mod frame;
pub mod snapshot;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Any error, boxed: what a caller's callback may fail with while a file is read back.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// An I/O operation failed (the error names the path).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A file is damaged where damage cannot be a torn write.
    #[error("{path}: damaged at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A log record or snapshot item is intact (its checksum matches) but could not be used:
    /// it did not decode, or the state refused it.
    #[error(
        "{path}: damaged at byte offset {offset}: {}{source}",
        .seq.map_or_else(String::new, |seq| format!("record {seq}: "))
    )]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// The record's sequence number (log records only).
        seq: Option<u64>,
        /// Why it could not be used.
        source: BoxError,
    },
    /// A file was written by a newer build.
    #[error(
        "{path}: format version {found} is newer than this build reads (up to {supported}); upgrade Proxima"
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The log stopped after an I/O error (the first one, shared by every write refused
    /// since); no write is accepted any more.
    #[error("the write-ahead log failed earlier ({0}); restart the server after fixing the disk")]
    Failed(#[source] Arc<PersistError>),
    /// The log's writer thread is gone (the log was closed), so a write was never answered.
    #[error(
        "the write-ahead log failed earlier (the log writer stopped); restart the server after fixing the disk"
    )]
    WriterStopped,
    /// A value could not be encoded.
    #[error("encoding failed: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// A snapshot item encoded to more than a `u32` length can say.
    #[error("encoding failed: item over 4 GiB")]
    ItemTooLarge,
}

impl PersistError {
    /// Whether this is damage to a file's contents (rather than an I/O failure), so that a
    /// reader may fall back to an older copy.
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::BadRecord { .. })
    }
}

/// Why bytes did not decode to a value.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// bincode refused them.
    #[error(transparent)]
    Bincode(#[from] bincode::error::DecodeError),
    /// The value ended before the bytes did.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// The bincode configuration of every record and snapshot item.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value with bincode 2 through serde.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, PersistError> {
    Ok(bincode::serde::encode_to_vec(value, bincode_config())?)
}

/// Decodes a value encoded by [`encode`], requiring that it uses every byte.
///
/// Every decode is bounded by the bytes actually present. bincode sizes a string or a byte
/// vector from the length it reads before it checks that the bytes are there, so a damaged
/// length of `00 fc 00 00 00 fa` allocated 4 GiB. Its only guard is a limit on the bytes
/// a decode may claim, fixed at compile time, so the limit is picked from a few tiers: the
/// smallest at least [`CLAIMS_PER_BYTE`] times the input. A decode then allocates at most
/// 16 × that much (the tiers' step) whatever its lengths say.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let bound = (bytes.len() as u64).saturating_mul(CLAIMS_PER_BYTE);
    let (value, used) = match bound {
        0..=0x1000 => decode_within::<T, 0x1000>(bytes)?,
        0x1001..=0x1_0000 => decode_within::<T, 0x1_0000>(bytes)?,
        0x1_0001..=0x10_0000 => decode_within::<T, 0x10_0000>(bytes)?,
        0x10_0001..=0x100_0000 => decode_within::<T, 0x100_0000>(bytes)?,
        0x100_0001..=0x1000_0000 => decode_within::<T, 0x1000_0000>(bytes)?,
        _ => decode_within::<T, 0x1_0000_0000>(bytes)?,
    };
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// How many bytes a decode may claim per byte of input: bincode claims 8 for an integer
/// that a varint may write in 1, and the length of a string as its bytes.
const CLAIMS_PER_BYTE: u64 = 8;

fn decode_within<T: serde::de::DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), DecodeError> {
    Ok(bincode::serde::decode_from_slice(
        bytes,
        bincode_config().with_limit::<LIMIT>(),
    )?)
}

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The files in `dir` named `{prefix}{number}{suffix}`, by number, lowest first; none if
/// `dir` does not exist. Log segments and snapshots are both named so.
pub(crate) fn numbered_files(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_damaged_length_is_refused_before_anything_is_allocated_for_it() {
        // A string whose length says 0xfa0000fc... (`fc` is bincode's 4-byte varint mark):
        // refused by the claim limit, not by running out of input after allocating.
        for damaged in [
            &[0xfc, 0x00, 0x00, 0x00, 0xfa][..],
            &[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, b'a'][..],
        ] {
            let err = decode::<String>(damaged).expect_err("damaged");
            assert!(
                matches!(
                    err,
                    DecodeError::Bincode(bincode::error::DecodeError::LimitExceeded)
                ),
                "{err:?}"
            );
        }
        let err = decode::<Vec<String>>(&[0xfc, 0x00, 0x00, 0x00, 0xfa]).expect_err("damaged");
        assert!(matches!(err, DecodeError::Bincode(_)), "{err:?}");
    }

    type Shapes = (Vec<(String, u64, Option<f64>, bool)>, Vec<String>, Vec<u64>);

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the shape (many empty strings, small integers, options), a value encodes
        /// to bytes that decode within the bound they set.
        #[test]
        fn every_encoded_value_decodes_within_its_bound(
            items in proptest::collection::vec(
                (".{0,3}", any::<u64>(), proptest::option::of(any::<f64>()), any::<bool>()),
                0..300,
            ),
            empties in 0usize..5000,
        ) {
            let value = (items, vec![String::new(); empties], vec![0u64; empties]);
            let bytes = encode(&value).expect("encodes");
            let back: Shapes = decode(&bytes).expect("decodes");
            prop_assert_eq!(format!("{back:?}"), format!("{value:?}"));
        }
    }
}
