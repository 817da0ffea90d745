//! Durable storage, generic over what it stores: a write-ahead log of framed records and
//! checksummed snapshot files. It knows bytes, framing, versions and checksums; it knows
//! nothing of POIs or travellers (the engine decides what the records mean).
//!
//! Every file starts with an 8-byte magic and a `u32` format version; a reader refuses a
//! version newer than it knows with an error saying so, and keeps readers for older ones.

pub mod frame;
pub mod snapshot;
pub mod wal;

use std::path::PathBuf;

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
    /// The log writer stopped after an I/O error; no write is accepted any more.
    #[error("the write-ahead log failed earlier ({0}); restart the server after fixing the disk")]
    Failed(String),
    /// A value could not be encoded.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// The bincode configuration of every record and snapshot item.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value with bincode 2 through serde.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, PersistError> {
    bincode::serde::encode_to_vec(value, bincode_config())
        .map_err(|e| PersistError::Encode(e.to_string()))
}

/// Decodes a value encoded by [`encode`], requiring that it uses every byte.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the value",
            bytes.len() - used
        ));
    }
    Ok(value)
}
