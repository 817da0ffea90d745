//! Replay: reading the log back in order at recovery, cutting off a torn last record and
//! refusing damage anywhere else.

use std::path::Path;

use super::segment::list_segments;
use super::{HEADER, MAGIC, VERSION};
use crate::persist::{BoxError, PersistError, frame};

/// What replaying the log found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The last sequence number in the log (or `after` if none is newer).
    pub last_seq: u64,
    /// Records passed to the callback.
    pub records: u64,
    /// Bytes of a torn last record cut off the end of the log.
    pub torn_bytes: u64,
    /// The last sequence number the log holds or continues from, whether replayed or not:
    /// its last record's, or one before an empty last segment's first; `None` without
    /// segments. A snapshot past it claims records that were never written.
    pub end: Option<u64>,
}

/// Replays every record with a sequence number above `after`, in order. A torn last record
/// (a crash mid-write) is cut off the file and counted in `torn_bytes`; damage anywhere else
/// is an error naming the file and the offset. An `apply` error stops the replay, as
/// [`PersistError::BadRecord`] naming the record.
pub fn replay(
    dir: &Path,
    after: u64,
    mut apply: impl FnMut(u64, &[u8]) -> Result<(), BoxError>,
) -> Result<Replayed, PersistError> {
    let segments = list_segments(dir)?;
    let mut out = Replayed {
        last_seq: after,
        ..Replayed::default()
    };
    let mut expected: Option<u64> = None;
    // Sequence arithmetic is checked: a damaged number at the top of the range must be
    // refused as damage, not wrap (a release build would reopen the log at 0).
    if let Some((first, path)) = segments.first()
        && *first > after.saturating_add(1)
    {
        return Err(PersistError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: format!(
                "the log starts at record {first}, but records from {} are needed",
                after.saturating_add(1)
            ),
        });
    }
    for (i, (first, path)) in segments.iter().enumerate() {
        let last_segment = i + 1 == segments.len();
        if last_segment {
            out.end = Some(first.saturating_sub(1));
        }
        let bytes = fs_err::read(path)?;
        let corrupt = |offset: usize, reason: String| PersistError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            if last_segment
                && bytes.len() < HEADER
                && MAGIC.starts_with(&bytes[..bytes.len().min(8)])
            {
                // Crashed while creating the segment: nothing in it was acknowledged.
                out.torn_bytes += bytes.len() as u64;
                fs_err::remove_file(path)?;
                break;
            }
            return Err(corrupt(
                0,
                "not a Proxima log segment (bad magic)".to_string(),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > VERSION {
            return Err(PersistError::NewerVersion {
                path: path.clone(),
                found: version,
                supported: VERSION,
            });
        }
        let mut offset = HEADER;
        loop {
            let problem = match frame::next(&bytes, offset) {
                frame::Next::End => break,
                frame::Next::Frame(body, next) if body.len() >= 8 => {
                    let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
                    if expected.is_some_and(|e| seq != e) || (expected.is_none() && seq != *first) {
                        return Err(corrupt(offset, format!("record {seq} is out of sequence")));
                    }
                    let Some(next_seq) = seq.checked_add(1) else {
                        return Err(corrupt(
                            offset,
                            format!(
                                "record {seq} is the last number there is: no record can follow it"
                            ),
                        ));
                    };
                    expected = Some(next_seq);
                    if last_segment {
                        out.end = Some(seq);
                    }
                    if seq > after {
                        apply(seq, &body[8..]).map_err(|source| PersistError::BadRecord {
                            path: path.clone(),
                            offset: offset as u64,
                            seq: Some(seq),
                            source,
                        })?;
                        out.records += 1;
                        out.last_seq = seq;
                    }
                    offset = next;
                    continue;
                }
                frame::Next::Frame(..) => "record shorter than its sequence number".to_string(),
                frame::Next::Torn => "the file ends inside a record".to_string(),
                frame::Next::Damaged(reason) => reason,
            };
            if last_segment && is_torn_tail(&bytes, offset) {
                let dropped = (bytes.len() - offset) as u64;
                tracing::warn!(path = %path.display(), offset, dropped, "cutting off a torn last record ({problem})");
                let file = fs_err::OpenOptions::new().write(true).open(path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                out.torn_bytes += dropped;
                break;
            }
            return Err(corrupt(offset, problem));
        }
    }
    Ok(out)
}

/// Whether the bytes from `offset` to the end can be a record cut short by a crash: the frame
/// there claims to reach the end of the file or beyond, or all that is left is zeros (a file
/// system may extend a file before the data lands).
fn is_torn_tail(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    if rest.len() < frame::HEADER || rest.iter().all(|b| *b == 0) {
        return true;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    frame::HEADER + len >= rest.len()
}
