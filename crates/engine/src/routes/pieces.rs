//! The bytes of a piece of fresh points: points as they reached the route store, many
//! trips together, before they are settled into each trip's chunks ([`super::store`]).
//!
//! A piece is cut into blobs of about [`BLOB_BYTES`], and a trip's entries are never split
//! between two blobs, so one trip's fresh points in a piece are in the one blob whose first
//! trip is the last at or before it. A blob is a run of entries in trip key order
//! ([`super::keys::trip_prefix`]), each: the trip's prefix, the chunk's length (`u32`
//! little-endian), then the chunk ([`super::codec`]: the points [`codec::split`] puts in
//! one, in increasing `ts` order, each once). A trip with more points in a piece has
//! several entries in a row.

use super::RoutePoint;
use super::codec::{self, CodecError};

/// The most bytes a blob holds, unless one trip's entries alone take more: a trip's
/// entries are found by decoding its blob up to them, so blobs are kept small (a read of
/// one trip's fresh points decodes one blob a piece), and large enough that a piece is a
/// few thousand keys, not one a trip. A blob, its key (8 bytes and a trip prefix of at
/// most 129) and a leaf's header (12 bytes for one entry) fit one 4 KiB page of `redb`:
/// blobs cut just past 4,096 bytes took an 8 KiB allocation each, and fresh pieces used
/// twice the pages their bytes needed (27.1 bytes a point stored, 26.8 unused; the
/// `route_pieces` example with `SPACE=1`).
pub const BLOB_BYTES: usize = 3_900;

/// One entry of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The trip's key prefix.
    pub prefix: &'a [u8],
    /// The trip's points, as [`codec::encode`] wrote them.
    pub chunk: &'a [u8],
}

impl Entry<'_> {
    /// Appends the entry's points to `out`.
    pub fn points(&self, out: &mut Vec<RoutePoint>) -> Result<(), CodecError> {
        codec::decode(self.chunk, out)
    }
}

/// The entries of a blob, in order.
pub fn entries(blob: &[u8]) -> Entries<'_> {
    Entries { rest: blob }
}

/// An iterator over a blob's entries; a damaged blob gives one error, then ends.
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        let &len = rest.first()?;
        let prefix_end = 1 + usize::from(len);
        let chunk_start = prefix_end + 4;
        let Some(chunk_len) = rest
            .get(prefix_end..chunk_start)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            self.rest = &[];
            return Some(Err(CodecError::Truncated));
        };
        let Some(chunk) = rest.get(chunk_start..chunk_start + chunk_len) else {
            self.rest = &[];
            return Some(Err(CodecError::Truncated));
        };
        self.rest = &rest[chunk_start + chunk_len..];
        Some(Ok(Entry {
            prefix: &rest[..prefix_end],
            chunk,
        }))
    }
}

/// Builds a piece's blobs from trips given in key order.
#[derive(Debug, Default)]
pub struct PieceWriter {
    blobs: Vec<(Vec<u8>, Vec<u8>)>,
    first: Vec<u8>,
    current: Vec<u8>,
    /// The trip being pushed, before it joins `current`.
    entries: Vec<u8>,
}

impl PieceWriter {
    /// Adds a trip's points (increasing `ts`, each once); trips come in key order, each
    /// once.
    pub fn push(&mut self, prefix: &[u8], points: &[RoutePoint]) {
        if points.is_empty() {
            return;
        }
        self.entries.clear();
        for part in codec::split(points) {
            self.entries.extend_from_slice(prefix);
            let at = self.entries.len();
            self.entries.extend_from_slice(&[0; 4]);
            codec::encode(part, &mut self.entries);
            let len = u32::try_from(self.entries.len() - at - 4)
                .expect("a chunk of at most MAX_CHUNK_BYTES is far under 4 GiB");
            self.entries[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        if self.current.len() + self.entries.len() > BLOB_BYTES {
            self.finish_blob();
        }
        if self.current.is_empty() {
            self.first = prefix.to_vec();
        }
        self.current.extend_from_slice(&self.entries);
    }

    fn finish_blob(&mut self) {
        if !self.current.is_empty() {
            // The next blob gets its room at once (grown from nothing, blobs cost the route
            // thread about 5 % of its time in reallocations in the trips workload).
            self.blobs.push((
                std::mem::take(&mut self.first),
                std::mem::replace(&mut self.current, Vec::with_capacity(BLOB_BYTES)),
            ));
        }
    }

    /// The blobs, each with the prefix of its first trip.
    pub fn finish(mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.finish_blob();
        self.blobs
    }
}

/// `blob` without `prefix`'s entries; `None` when it had none.
pub fn without(blob: &[u8], prefix: &[u8]) -> Result<Option<Vec<u8>>, CodecError> {
    let mut kept = Vec::with_capacity(blob.len());
    let mut found = false;
    let mut rest = blob;
    for entry in entries(blob) {
        let entry = entry?;
        let len = entry.prefix.len() + 4 + entry.chunk.len();
        if entry.prefix == prefix {
            found = true;
        } else {
            kept.extend_from_slice(&rest[..len]);
        }
        rest = &rest[len..];
    }
    Ok(found.then_some(kept))
}

/// `blob` with only the points of `prefix`'s entries that `keep` keeps (entries left
/// empty go); `None` when `keep` kept every one of them, or the blob has none. The other
/// trips' entries are left as they were.
pub fn filtered(
    blob: &[u8],
    prefix: &[u8],
    keep: impl Fn(&RoutePoint) -> bool,
) -> Result<Option<Vec<u8>>, CodecError> {
    let mut out = Vec::with_capacity(blob.len());
    let mut dropped = false;
    let mut rest = blob;
    let mut points = Vec::new();
    for entry in entries(blob) {
        let entry = entry?;
        let len = entry.prefix.len() + 4 + entry.chunk.len();
        if entry.prefix == prefix {
            points.clear();
            entry.points(&mut points)?;
            let before = points.len();
            points.retain(|p| keep(p));
            if points.len() == before {
                out.extend_from_slice(&rest[..len]);
            } else {
                dropped = true;
                // Cut as a writer cuts them: the kept points' deltas may differ.
                for part in codec::split(&points) {
                    out.extend_from_slice(entry.prefix);
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    codec::encode(part, &mut out);
                    let chunk_len = u32::try_from(out.len() - at - 4)
                        .expect("a chunk of at most MAX_CHUNK_BYTES is far under 4 GiB");
                    out[at..at + 4].copy_from_slice(&chunk_len.to_le_bytes());
                }
            }
        } else {
            out.extend_from_slice(&rest[..len]);
        }
        rest = &rest[len..];
    }
    Ok(dropped.then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::keys::trip_prefix;
    use proptest::prelude::*;

    fn trip_points(n: usize, seed: i64) -> Vec<RoutePoint> {
        (0..n as i64)
            .map(|i| RoutePoint {
                ts: seed + i * 1_000,
                lat: codec::from_units(codec::to_units(((seed + i) % 170) as f64 - 85.0)),
                lon: codec::from_units(codec::to_units(((seed * 7 + i) % 350) as f64 - 175.0)),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(64))]

        /// Every trip's points read back from its blob alone (the last blob starting at or
        /// before it), as written; stripping a trip, or narrowing its points to a window,
        /// leaves the others as they were.
        #[test]
        fn trips_read_back_from_their_blob(
            sizes in proptest::collection::vec(0usize..700, 1..60),
            gone in any::<prop::sample::Index>(),
            window in (0i64..800_000, 0i64..800_000),
        ) {
            let mut ids: Vec<String> = (0..sizes.len()).map(|i| format!("t{i}")).collect();
            ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
            let written: Vec<(Vec<u8>, Vec<RoutePoint>)> = ids
                .iter()
                .zip(&sizes)
                .enumerate()
                .map(|(i, (id, &n))| (trip_prefix(id), trip_points(n, i as i64)))
                .collect();
            let mut writer = PieceWriter::default();
            for (prefix, points) in &written {
                writer.push(prefix, points);
            }
            let blobs = writer.finish();
            prop_assert!(blobs.windows(2).all(|w| w[0].0 < w[1].0));
            // A blob over the bound holds one trip alone.
            for (first, blob) in &blobs {
                prop_assert!(
                    blob.len() <= BLOB_BYTES
                        || entries(blob).all(|e| e.expect("well formed").prefix == first.as_slice()),
                    "a blob of {} bytes holds several trips", blob.len()
                );
            }
            let read = |blobs: &[(Vec<u8>, Vec<u8>)], prefix: &[u8]| -> Vec<RoutePoint> {
                let mut out = Vec::new();
                if let Some((_, blob)) = blobs.iter().rev().find(|(first, _)| first.as_slice() <= prefix) {
                    for entry in entries(blob) {
                        let entry = entry.expect("well formed");
                        if entry.prefix == prefix {
                            entry.points(&mut out).expect("decodes");
                        }
                    }
                }
                out
            };
            for (prefix, points) in &written {
                prop_assert_eq!(&read(&blobs, prefix), points);
            }
            let gone = &written[gone.index(written.len())].0;
            let stripped: Vec<(Vec<u8>, Vec<u8>)> = blobs
                .iter()
                .map(|(first, blob)| {
                    let kept = without(blob, gone).expect("well formed");
                    (first.clone(), kept.unwrap_or_else(|| blob.clone()))
                })
                .collect();
            for (prefix, points) in &written {
                let expected = if prefix == gone { Vec::new() } else { points.clone() };
                prop_assert_eq!(read(&stripped, prefix), expected);
            }
            // Narrowing one trip's points to a window leaves the others as they were.
            let (from, to) = (window.0.min(window.1), window.0.max(window.1));
            let inside = |p: &RoutePoint| (from..=to).contains(&p.ts);
            let narrowed: Vec<(Vec<u8>, Vec<u8>)> = blobs
                .iter()
                .map(|(first, blob)| {
                    let kept = filtered(blob, gone, inside).expect("well formed");
                    (first.clone(), kept.unwrap_or_else(|| blob.clone()))
                })
                .collect();
            for (prefix, points) in &written {
                let expected: Vec<RoutePoint> = if prefix == gone {
                    points.iter().copied().filter(inside).collect()
                } else {
                    points.clone()
                };
                prop_assert_eq!(read(&narrowed, prefix), expected);
            }
        }

        /// Damaged blobs are an error, never a panic.
        #[test]
        fn damaged_blobs_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for entry in entries(&bytes).flatten() {
                let _ = entry.points(&mut Vec::new());
            }
            let _ = without(&bytes, b"\x01a");
            let _ = filtered(&bytes, b"\x01a", |p| p.ts > 0);
        }
    }
}
