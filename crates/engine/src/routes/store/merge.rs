//! Settling points into a trip's chunks: the read-merge-write of [`Tables::merge`], which
//! keeps each `ts` once (the point stored first wins) and corrects the trip's figures and
//! explored cells for the points it added. A route growing at its end, the usual case, is
//! appended to instead ([`Tables::merge`] hands it to `append_after`): the new points'
//! bytes after its last chunk's, and the distance grown by the new legs alone.

use redb::ReadableTable;

use super::{CELLS, CHUNKS, FIGURES, RouteStoreError};
use crate::geometry::haversine_m;
use crate::routes::codec;
use crate::routes::keys::{chunk_key, chunk_start, trip_prefix};
use crate::routes::places;
use crate::routes::{RoutePoint, TripFigures};

/// Where the chunk that may hold `ts` starts: the trip's last chunk starting at or before
/// it, or `ts` itself when none does.
pub(super) fn start_of_chunk_holding(
    chunks: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    ts: i64,
) -> Result<i64, RouteStoreError> {
    Ok(chunks
        .range(chunk_key(prefix, i64::MIN).as_slice()..=chunk_key(prefix, ts).as_slice())?
        .next_back()
        .transpose()?
        .map_or(ts, |(k, _)| chunk_start(k.value())))
}

/// The country all of `points` are in, if one lookup can tell ([`places::sole_country_in`]
/// over their box; a box across the antimeridian is looked up point by point).
fn sole_country_of(points: &[RoutePoint]) -> Option<Option<&'static str>> {
    if points.len() < 2 {
        return None;
    }
    let (mut south, mut north) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut west, mut east) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in points {
        south = south.min(p.lat);
        north = north.max(p.lat);
        west = west.min(p.lon);
        east = east.max(p.lon);
    }
    places::sole_country_in(south, west, north, east)
}

/// The settled level's tables, which a merge writes.
pub(super) struct Tables<'txn> {
    chunks: redb::Table<'txn, &'static [u8], &'static [u8]>,
    figures: redb::Table<'txn, &'static [u8], &'static [u8]>,
    cells: redb::Table<'txn, &'static [u8], ()>,
}

/// A cell's key: the trip's prefix, then the cell id big-endian.
pub(super) fn cell_key(prefix: &[u8], cell: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&cell.to_be_bytes());
    key
}

impl<'txn> Tables<'txn> {
    /// Opens the settled level's tables in `txn`.
    pub(super) fn open(txn: &'txn redb::WriteTransaction) -> Result<Self, RouteStoreError> {
        Ok(Self {
            chunks: txn.open_table(CHUNKS)?,
            figures: txn.open_table(FIGURES)?,
            cells: txn.open_table(CELLS)?,
        })
    }

    /// Merges `new` (sorted by `ts`, each once) into `trip`'s chunks: the chunks their
    /// times fall in are read, merged (a point already stored wins) and written back, split
    /// into chunks as [`codec::split`] cuts them, and the trip's figures are corrected
    /// for the points added. Gives how many of `new` were stored already.
    pub(super) fn merge(&mut self, trip: &str, new: &[RoutePoint]) -> Result<u64, RouteStoreError> {
        let (Some(lo), Some(hi)) = (new.first().map(|p| p.ts), new.last().map(|p| p.ts)) else {
            return Ok(0);
        };
        let prefix = trip_prefix(trip);
        let mut figures: TripFigures = match self.figures.get(prefix.as_slice())? {
            Some(bytes) => crate::persist::decode(bytes.value())
                .map_err(|e| RouteStoreError::Figures(e.to_string()))?,
            None => TripFigures::default(),
        };
        if let Some(last) = figures.last
            && last.ts < lo
        {
            // Every new point after every stored one: the usual case.
            if self.append_after(&prefix, &figures, last, new)? {
                return Ok(0);
            }
        }
        let chunks = &mut self.chunks;
        // Every chunk starting up to `hi`, back to the one that may hold `lo` (the last
        // starting at or before it): one seek, from the end, where new points usually
        // fall.
        let mut found: Vec<(Vec<u8>, Vec<RoutePoint>)> = Vec::new();
        for entry in chunks
            .range(chunk_key(&prefix, i64::MIN).as_slice()..=chunk_key(&prefix, hi).as_slice())?
            .rev()
        {
            let (key, bytes) = entry?;
            let key = key.value().to_vec();
            let start = chunk_start(&key);
            let mut points = Vec::new();
            codec::decode(bytes.value(), &mut points)?;
            found.push((key, points));
            if start <= lo {
                break;
            }
        }
        let mut old_keys = Vec::with_capacity(found.len());
        let mut stored = Vec::new();
        for (key, points) in found.into_iter().rev() {
            old_keys.push(key);
            stored.extend(points);
        }
        // Merge two sorted runs; on equal `ts` the stored point wins.
        let mut merged = Vec::with_capacity(stored.len() + new.len());
        let mut added = Vec::with_capacity(new.len());
        let (mut i, mut j, mut already) = (0, 0, 0u64);
        while i < stored.len() || j < new.len() {
            match (stored.get(i), new.get(j)) {
                (Some(s), Some(n)) if s.ts == n.ts => {
                    merged.push(*s);
                    already += 1;
                    i += 1;
                    j += 1;
                }
                (Some(s), Some(n)) if s.ts < n.ts => {
                    merged.push(*s);
                    i += 1;
                }
                (Some(s), None) => {
                    merged.push(*s);
                    i += 1;
                }
                (_, Some(n)) => {
                    merged.push(*n);
                    added.push(*n);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if added.is_empty() {
            return Ok(already);
        }
        // The point after the region: the first of the next chunk, if any point lies past
        // the region (a route growing at its end, the usual case, has none: no lookup).
        let beyond = figures.last.is_some_and(|last| last.ts > hi);
        let next = match hi.checked_add(1).filter(|_| beyond) {
            None => None,
            Some(after) => match chunks
                .range(
                    chunk_key(&prefix, after).as_slice()..=chunk_key(&prefix, i64::MAX).as_slice(),
                )?
                .next()
            {
                Some(entry) => {
                    let (_, bytes) = entry?;
                    let mut points = Vec::new();
                    codec::decode(bytes.value(), &mut points)?;
                    points.first().copied()
                }
                None => None,
            },
        };
        // The chunks as they now split; an old key written again is overwritten, not
        // removed first (the usual case: points added at the end of the last chunk).
        let parts: Vec<&[RoutePoint]> = codec::split(&merged).collect();
        let new_keys: Vec<Vec<u8>> = parts
            .iter()
            .map(|part| chunk_key(&prefix, part[0].ts))
            .collect();
        for key in old_keys.iter().filter(|k| !new_keys.contains(k)) {
            chunks.remove(key.as_slice())?;
        }
        let mut bytes = Vec::new();
        for (key, part) in new_keys.iter().zip(&parts) {
            bytes.clear();
            codec::encode(part, &mut bytes);
            chunks.insert(key.as_slice(), bytes.as_slice())?;
        }

        figures.replace_region(&stored, &merged, next);
        self.count_added(&prefix, figures, &added)?;
        Ok(already)
    }

    /// Stores `new` (sorted by `ts`, each once, every one later than `last`, the trip's
    /// last stored point) at the end of the trip's route: appended to the bytes of its last
    /// chunk as far as they fit ([`codec::fitting`]), the rest in new chunks; the distance grows by the
    /// legs from `last` on. Neither the stored points nor their legs are worked out again,
    /// which made a settling cost in proportion to the length of the last chunk (a sixth of
    /// the route thread's time went to the haversine of legs already counted).
    /// Gives `false`, changing nothing, when the last chunk does not end at `last` (figures
    /// that disagree with the chunks: the general merge puts the points in order).
    fn append_after(
        &mut self,
        prefix: &[u8],
        figures: &TripFigures,
        last: RoutePoint,
        new: &[RoutePoint],
    ) -> Result<bool, RouteStoreError> {
        // An open start: `redb` then seeks only the end, one descent rather than two.
        let found = self
            .chunks
            .range(..=chunk_key(prefix, i64::MAX).as_slice())?
            .next_back()
            .transpose()?
            .filter(|(key, _)| {
                key.value().len() == prefix.len() + 8 && key.value().starts_with(prefix)
            })
            .map(|(key, bytes)| (key.value().to_vec(), bytes.value().to_vec()));
        let Some((key, bytes)) = found else {
            return Ok(false);
        };
        let Some(end) = codec::chunk_end(&bytes)?.filter(|end| end.last_ts() == last.ts) else {
            return Ok(false);
        };
        let mut figures = figures.clone();
        let mut rest = new;
        {
            let room = codec::fitting(Some((&bytes, &end)), rest);
            if room > 0 {
                let mut out = Vec::with_capacity(bytes.len() + 2 + room * 8);
                codec::append(&bytes, &end, &rest[..room], &mut out);
                self.chunks.insert(key.as_slice(), out.as_slice())?;
                rest = &rest[room..];
            }
        }
        let mut bytes = Vec::new();
        for part in codec::split(rest) {
            bytes.clear();
            codec::encode(part, &mut bytes);
            self.chunks
                .insert(chunk_key(prefix, part[0].ts).as_slice(), bytes.as_slice())?;
        }
        let mut previous = last;
        for p in new {
            figures.distance_m += haversine_m(previous.latlon(), p.latlon());
            previous = *p;
        }
        self.count_added(prefix, figures, new)?;
        Ok(true)
    }

    /// Counts `added` into `figures` (countries, extent, explored cells) and stores them.
    fn count_added(
        &mut self,
        prefix: &[u8],
        mut figures: TripFigures,
        added: &[RoutePoint],
    ) -> Result<(), RouteStoreError> {
        let sole_country = sole_country_of(added);
        for p in added {
            let country = match sole_country {
                Some(country) => country,
                None => places::country_at(p.lat, p.lon),
            };
            figures.count(*p, country);
            let cell = places::explored_cell(p.lat, p.lon);
            // Consecutive points mostly share a cell: a cell is looked up once in a row,
            // across appends too (the figures remember the last one).
            if figures.last_cell != cell {
                figures.last_cell = cell;
                if self
                    .cells
                    .insert(cell_key(prefix, cell).as_slice(), ())?
                    .is_none()
                {
                    figures.count_cell(places::cell_km2(cell));
                }
            }
        }
        let encoded = crate::persist::encode(&figures)
            .map_err(|e| RouteStoreError::Figures(e.to_string()))?;
        self.figures.insert(prefix, encoded.as_slice())?;
        Ok(())
    }
}
