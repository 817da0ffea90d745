//! Fresh pieces: writing them, reading one trip's entries from them, settling them into the
//! chunks, and stripping an erased trip from them (the store's first level; see the
//! module above for why).

use redb::{
    AccessGuard, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    WriteTransaction,
};

use super::merge::Tables;
use super::{FRESH, META, NEXT_PIECE, PIECES, RouteStore, RouteStoreError};
use crate::routes::RoutePoint;
use crate::routes::codec::{self, CodecError};
use crate::routes::keys::{ID_HEAD_BYTES, id_head, trip_prefix, trip_prefix_into};
use crate::routes::pieces::{self, PieceWriter};

/// Where a settling of fresh pieces has got to: pieces up to `upto` are being settled, and
/// every trip up to `after` (a key prefix) is done. Kept by the caller between parts; a
/// settling cut short (a restart) starts again, which settles nothing twice.
#[derive(Debug, Clone)]
pub struct Settling {
    upto: u64,
    after: Option<Vec<u8>>,
    /// Parts settled since the last durable one.
    parts: u32,
}

impl Settling {
    /// The newest piece it settles: pieces numbered past it were written after it began.
    pub fn upto(&self) -> u64 {
        self.upto
    }
}

/// Every this many parts of a settling, and its last, are made durable. `redb` reuses the
/// pages an unsynced commit frees only after a synced one, so a settling synced only at its
/// end held two copies of every page it touched: the file's blocks doubled at each
/// settling that touched every trip. Measured with the `route_pieces` example (250,000
/// trips, three rounds of 8M points, `SPACE=1`): 34.3 bytes a point on disk after the
/// rounds synced only at each settling's end, 25.2 synced every part and 26.8 every 8, at
/// the same settling rate (0.65–0.73 µs a point against 0.69–0.89).
const DURABLE_EVERY_PARTS: u32 = 4;

/// A blob's key: the piece's number big-endian, then its first trip's prefix.
fn blob_key(piece: u64, prefix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + prefix.len());
    key.extend_from_slice(&piece.to_be_bytes());
    key.extend_from_slice(prefix);
    key
}

/// A blob's key and bytes.
type Blob = (Vec<u8>, Vec<u8>);
/// A blob's key and bytes where they lie in the table.
type BlobAt<'t> = (
    AccessGuard<'t, &'static [u8]>,
    AccessGuard<'t, &'static [u8]>,
);

/// The blob of `piece` that holds `prefix`'s entries if it has any (the last starting at
/// or before it), its key and bytes where they lie.
fn blob_at<'t>(
    fresh: &'t impl ReadableTable<&'static [u8], &'static [u8]>,
    piece: u64,
    prefix: &[u8],
) -> Result<Option<BlobAt<'t>>, RouteStoreError> {
    Ok(fresh
        .range(blob_key(piece, &[]).as_slice()..=blob_key(piece, prefix).as_slice())?
        .next_back()
        .transpose()?)
}

/// [`blob_at`], copied out (for a caller that writes the table after).
fn blob_holding(
    fresh: &impl ReadableTable<&'static [u8], &'static [u8]>,
    piece: u64,
    prefix: &[u8],
) -> Result<Option<Blob>, RouteStoreError> {
    Ok(blob_at(fresh, piece, prefix)?.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
}

/// Appends `prefix`'s points in `blob` to `out`. A blob's entries are in key order, so
/// the scan ends at the first entry past `prefix`.
fn trip_points_in(
    blob: &[u8],
    prefix: &[u8],
    out: &mut Vec<RoutePoint>,
) -> Result<(), RouteStoreError> {
    for entry in pieces::entries(blob) {
        let entry = entry?;
        match entry.prefix.cmp(prefix) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => entry.points(out)?,
            std::cmp::Ordering::Greater => break,
        }
    }
    Ok(())
}

/// Appends `prefix`'s points in `piece` to `out`, read where they lie: a reader of a trip
/// does this for every fresh piece, one after another, while readers and the route thread
/// wait their turn, so nothing is copied out first.
fn trip_points_of(
    fresh: &impl ReadableTable<&'static [u8], &'static [u8]>,
    piece: u64,
    prefix: &[u8],
    out: &mut Vec<RoutePoint>,
) -> Result<(), RouteStoreError> {
    if let Some((_, blob)) = blob_at(fresh, piece, prefix)? {
        trip_points_in(blob.value(), prefix, out)?;
    }
    Ok(())
}

/// The numbers of the pieces not yet settled, oldest first.
fn piece_numbers(
    pieces: &impl ReadableTable<u64, ()>,
    upto: u64,
) -> Result<Vec<u64>, RouteStoreError> {
    let mut out = Vec::new();
    for entry in pieces.range(..=upto)? {
        out.push(entry?.0.value());
    }
    Ok(out)
}

/// Sorts a trip's points, gathered oldest first, by `ts`, keeping the first of each `ts`.
fn first_of_each_ts(points: &mut Vec<RoutePoint>) {
    points.sort_by_key(|p| p.ts);
    points.dedup_by_key(|p| p.ts);
}

impl RouteStore {
    /// Writes `points` of their trips (any order; a trip's points in the order they
    /// arrived) as one fresh piece; gives how many it holds (repeats of a `ts` within a
    /// trip dropped, the first kept). Not yet durable: see [`RouteStore::make_durable`].
    pub fn add_fresh(&self, points: &[(&str, RoutePoint)]) -> Result<u64, RouteStoreError> {
        let mut sorted: Vec<(&str, RoutePoint)> = points.to_vec();
        // By trip in the keys' order; stable, so each trip's points stay in arrival order.
        sorted.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
        let grouped: Vec<(&str, Vec<RoutePoint>)> = sorted
            .chunk_by(|a, b| a.0 == b.0)
            .map(|group| (group[0].0, group.iter().map(|(_, p)| *p).collect()))
            .collect();
        self.add_fresh_trips(
            grouped
                .iter()
                .map(|(trip, points)| (*trip, points.as_slice())),
        )
    }

    /// [`RouteStore::add_fresh`] for points already gathered by trip: `trips` in the
    /// keys' order (the id's length, then the id), each once, each with its points in the
    /// order they arrived.
    pub fn add_fresh_trips<'a>(
        &self,
        trips: impl IntoIterator<Item = (&'a str, &'a [RoutePoint])>,
    ) -> Result<u64, RouteStoreError> {
        let piece = self.next_piece()?;
        self.add_fresh_piece(piece, trips)
    }

    /// The number the next fresh piece takes unless its writer chose one
    /// ([`RouteStore::add_fresh_piece`]): one past every number used so far.
    pub fn next_piece(&self) -> Result<u64, RouteStoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(META)?
            .get(NEXT_PIECE)?
            .map_or(0, |v| v.value()))
    }

    /// [`RouteStore::add_fresh_trips`] as piece number `piece`, which must be at least
    /// [`RouteStore::next_piece`] (numbers may be skipped: the engine numbers its pieces
    /// when it takes their points, so that a narrowing knows which pieces may hold points
    /// from before it).
    pub fn add_fresh_piece<'a>(
        &self,
        piece: u64,
        trips: impl IntoIterator<Item = (&'a str, &'a [RoutePoint])>,
    ) -> Result<u64, RouteStoreError> {
        let mut writer = PieceWriter::default();
        let mut held = 0u64;
        let mut trip_points = Vec::new();
        let mut prefix = Vec::new();
        let mut previous: Option<&str> = None;
        for (trip, points) in trips {
            debug_assert!(
                previous.is_none_or(|p| (p.len(), p) < (trip.len(), trip)),
                "trips in key order, each once"
            );
            previous = Some(trip);
            trip_points.clear();
            trip_points.extend_from_slice(points);
            first_of_each_ts(&mut trip_points);
            held += trip_points.len() as u64;
            trip_prefix_into(trip, &mut prefix);
            writer.push(&prefix, &trip_points);
        }
        if held == 0 {
            return Ok(0);
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut meta = txn.open_table(META)?;
            let next = meta.get(NEXT_PIECE)?.map_or(0, |v| v.value());
            debug_assert!(piece >= next, "piece {piece} numbered below {next}");
            meta.insert(NEXT_PIECE, next.max(piece + 1))?;
            let mut fresh = txn.open_table(FRESH)?;
            for (first, blob) in writer.finish() {
                fresh.insert(blob_key(piece, &first).as_slice(), blob.as_slice())?;
            }
            txn.open_table(PIECES)?.insert(piece, ())?;
        }
        txn.commit()?;
        Ok(held)
    }

    /// How many fresh pieces wait to be settled.
    pub fn fresh_pieces(&self) -> Result<u64, RouteStoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(PIECES)?.len()?)
    }

    /// Settles `trip`'s fresh points, then `newer` (points that arrived after every piece,
    /// in the order they arrived), into its chunks, in one transaction; commits only if
    /// that added a point. A reader of the trip calls it first.
    pub fn settle_trip(&self, trip: &str, newer: &[RoutePoint]) -> Result<(), RouteStoreError> {
        if newer.is_empty() && self.fresh_pieces()? == 0 {
            // Nothing to settle: no writer's turn taken (the usual read of a quiet trip).
            return Ok(());
        }
        let prefix = trip_prefix(trip);
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let added = {
            let mut points = Vec::new();
            {
                let fresh = txn.open_table(FRESH)?;
                let pieces = txn.open_table(PIECES)?;
                for piece in piece_numbers(&pieces, u64::MAX)? {
                    trip_points_of(&fresh, piece, &prefix, &mut points)?;
                }
            }
            points.extend(newer.iter().map(|p| codec::as_stored(*p)));
            first_of_each_ts(&mut points);
            let mut tables = Tables::open(&txn)?;
            let already = tables.merge(trip, &points)?;
            points.len() as u64 > already
        };
        if added {
            txn.commit()?;
            self.figures_cache.committed();
        } else {
            txn.abort()?;
        }
        Ok(())
    }

    /// Starts settling every fresh piece written so far (`None`: there is none).
    pub fn start_settling(&self) -> Result<Option<Settling>, RouteStoreError> {
        let txn = self.db.begin_read()?;
        let pieces = txn.open_table(PIECES)?;
        Ok(pieces.last()?.map(|(last, _)| Settling {
            upto: last.value(),
            after: None,
            parts: 0,
        }))
    }

    /// Settles the next part of `settling`: the fresh points of up to about `trips` trips
    /// a piece, in one transaction. Gives `true` when every piece of it is settled (and
    /// dropped). That last part, and every fourth, is made durable, so
    /// that `redb` can reuse the pages the settling freed.
    pub fn settle_some(
        &self,
        settling: &mut Settling,
        trips: usize,
    ) -> Result<bool, RouteStoreError> {
        let trips = trips.max(1);
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        // Each piece's entries past `after`, up to `trips` trips; the part ends at the least
        // of the last trips of the pieces that had more (every piece's entries up to it are
        // in hand), or takes everything when none had.
        let (numbers, gathered) = {
            let fresh = txn.open_table(FRESH)?;
            let pieces = txn.open_table(PIECES)?;
            let numbers = piece_numbers(&pieces, settling.upto)?;
            let mut gathered = Vec::with_capacity(numbers.len());
            for &piece in &numbers {
                gathered.push(Gathered::read(
                    &fresh,
                    piece,
                    settling.after.as_deref(),
                    trips,
                )?);
            }
            (numbers, gathered)
        };
        let end: Option<Vec<u8>> = gathered
            .iter()
            .filter(|g| g.more)
            .filter_map(|g| g.trips.last().map(|t| g.prefix(t)))
            .min()
            .map(<[u8]>::to_vec);
        {
            let mut tables = Tables::open(&txn)?;
            // A merge of the pieces' sorted runs of trips; a trip's points oldest piece first.
            // Each step finds the least trip at the pieces' heads by their ids' lengths and
            // heads as numbers ([`id_head`]), with no copy of the prefix: with 128 pieces a
            // settling of a million trips, comparing the prefixes' bytes was a quarter of a
            // billion calls to `memcmp`.
            let mut next = vec![0usize; gathered.len()];
            let mut points = Vec::new();
            let end = end.as_deref();
            // The pieces whose heads are the least trip, oldest first: found in one pass.
            let mut least: Vec<usize> = Vec::with_capacity(gathered.len());
            loop {
                least.clear();
                for (at, (g, &i)) in gathered.iter().zip(&next).enumerate() {
                    let Some(t) = g.trips.get(i) else { continue };
                    let order = match least.first() {
                        None => std::cmp::Ordering::Less,
                        Some(&l) => {
                            let lg = &gathered[l];
                            g.cmp_trips(t, lg, &lg.trips[next[l]])
                        }
                    };
                    match order {
                        std::cmp::Ordering::Less => {
                            least.clear();
                            least.push(at);
                        }
                        std::cmp::Ordering::Equal => least.push(at),
                        std::cmp::Ordering::Greater => {}
                    }
                }
                let Some(&first) = least.first() else { break };
                let lg = &gathered[first];
                let prefix = lg.prefix(&lg.trips[next[first]]);
                if end.is_some_and(|end| prefix > end) {
                    break;
                }
                points.clear();
                for &at in &least {
                    let g = &gathered[at];
                    points.extend_from_slice(&g.points[g.trips[next[at]].points.clone()]);
                    next[at] += 1;
                }
                let trip = std::str::from_utf8(&prefix[1..])
                    .map_err(|_| RouteStoreError::Chunk(CodecError::Invalid))?;
                first_of_each_ts(&mut points);
                tables.merge(trip, &points)?;
            }
        }
        let done = match end {
            Some(end) => {
                settling.after = Some(end);
                false
            }
            None => {
                let mut fresh = txn.open_table(FRESH)?;
                let mut pieces = txn.open_table(PIECES)?;
                for piece in numbers {
                    fresh.retain_in(
                        blob_key(piece, &[]).as_slice()
                            ..blob_key(piece.saturating_add(1), &[]).as_slice(),
                        |_, _| false,
                    )?;
                    pieces.remove(piece)?;
                }
                true
            }
        };
        settling.parts += 1;
        if done || settling.parts >= DURABLE_EVERY_PARTS {
            settling.parts = 0;
            txn.set_durability(Durability::Immediate)?;
        }
        txn.commit()?;
        self.figures_cache.committed();
        Ok(done)
    }
}

/// One piece's entries in a part of a settling, kept flat (one allocation for all the
/// prefixes and one for all the points, not one an entry: the allocator took a sixth of
/// the settling's time when each entry had its own).
#[derive(Debug, Default)]
struct Gathered {
    /// Each trip's prefix in `bytes` and points in `points`, in key order.
    trips: Vec<GatheredTrip>,
    bytes: Vec<u8>,
    points: Vec<RoutePoint>,
    /// Whether the piece holds more trips past the last one gathered.
    more: bool,
}

#[derive(Debug)]
struct GatheredTrip {
    /// The id's length and head ([`id_head`]): they order trips as their prefixes do.
    key: (u8, [u128; 2]),
    prefix: std::ops::Range<usize>,
    points: std::ops::Range<usize>,
}

impl Gathered {
    /// Up to `trips` trips of `piece` past `after`.
    fn read(
        fresh: &impl ReadableTable<&'static [u8], &'static [u8]>,
        piece: u64,
        after: Option<&[u8]>,
        trips: usize,
    ) -> Result<Self, RouteStoreError> {
        let start = match after {
            Some(after) => blob_at(fresh, piece, after)?
                .map_or_else(|| blob_key(piece, &[]), |(key, _)| key.value().to_vec()),
            None => blob_key(piece, &[]),
        };
        let mut out = Self::default();
        for blob in
            fresh.range(start.as_slice()..blob_key(piece.saturating_add(1), &[]).as_slice())?
        {
            let (_, blob) = blob?;
            for entry in pieces::entries(blob.value()) {
                let entry = entry?;
                if after.is_some_and(|after| entry.prefix <= after) {
                    continue;
                }
                let same = out
                    .trips
                    .last()
                    .is_some_and(|t| &out.bytes[t.prefix.clone()] == entry.prefix);
                if !same {
                    if out.trips.len() == trips {
                        out.more = true;
                        return Ok(out);
                    }
                    let at = out.bytes.len();
                    out.bytes.extend_from_slice(entry.prefix);
                    out.trips.push(GatheredTrip {
                        key: (entry.prefix[0], id_head(&entry.prefix[1..])),
                        prefix: at..out.bytes.len(),
                        points: out.points.len()..out.points.len(),
                    });
                }
                entry.points(&mut out.points)?;
                let end = out.points.len();
                if let Some(t) = out.trips.last_mut() {
                    t.points.end = end;
                }
            }
        }
        Ok(out)
    }

    fn prefix(&self, trip: &GatheredTrip) -> &[u8] {
        &self.bytes[trip.prefix.clone()]
    }

    /// How `trip` (of this piece) orders against `theirs` (of `other`): by their keys,
    /// then, only when those tie on ids longer than the head, by their prefixes.
    #[inline]
    fn cmp_trips(
        &self,
        trip: &GatheredTrip,
        other: &Gathered,
        theirs: &GatheredTrip,
    ) -> std::cmp::Ordering {
        trip.key.cmp(&theirs.key).then_with(|| {
            // Equal keys: equal lengths.
            if usize::from(trip.key.0) > ID_HEAD_BYTES {
                self.prefix(trip).cmp(other.prefix(theirs))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    }
}

impl RouteStore {
    /// Narrows `trip`'s fresh points piece by piece, in one transaction (committed only if
    /// a point went); gives how many went. `window(piece)` is the window the trip's points
    /// in that piece must lie in (`None`: leave them), so that each narrowing applies only
    /// to the pieces that may hold points from before it. The cost is a blob lookup a piece
    /// and the trip's own fresh points, never its whole route.
    pub fn narrow_fresh(
        &self,
        trip: &str,
        window: impl Fn(u64) -> Option<(i64, i64)>,
    ) -> Result<u64, RouteStoreError> {
        if self.fresh_pieces()? == 0 {
            return Ok(0);
        }
        let prefix = trip_prefix(trip);
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let mut dropped = 0u64;
        {
            let mut fresh = txn.open_table(FRESH)?;
            let pieces = txn.open_table(PIECES)?;
            let mut points = Vec::new();
            for piece in piece_numbers(&pieces, u64::MAX)? {
                let Some((from, to)) = window(piece) else {
                    continue;
                };
                let inside = |p: &RoutePoint| (from..=to).contains(&p.ts);
                let Some((key, blob)) = blob_holding(&fresh, piece, &prefix)? else {
                    continue;
                };
                let Some(kept) = pieces::filtered(&blob, &prefix, inside)? else {
                    continue;
                };
                points.clear();
                trip_points_in(&blob, &prefix, &mut points)?;
                dropped += points.iter().filter(|p| !inside(p)).count() as u64;
                if kept.is_empty() {
                    fresh.remove(key.as_slice())?;
                } else {
                    fresh.insert(key.as_slice(), kept.as_slice())?;
                }
            }
        }
        if dropped > 0 {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(dropped)
    }
}

/// Strips `prefix`'s entries from every fresh piece (within `txn`); gives how many points
/// they held.
pub(super) fn strip(txn: &WriteTransaction, prefix: &[u8]) -> Result<u64, RouteStoreError> {
    let mut fresh = txn.open_table(FRESH)?;
    let pieces = txn.open_table(PIECES)?;
    let mut stripped = 0u64;
    for piece in piece_numbers(&pieces, u64::MAX)? {
        let Some((key, blob)) = blob_holding(&fresh, piece, prefix)? else {
            continue;
        };
        let mut points = Vec::new();
        trip_points_in(&blob, prefix, &mut points)?;
        stripped += points.len() as u64;
        match pieces::without(&blob, prefix)? {
            None => {}
            Some(kept) if kept.is_empty() => {
                fresh.remove(key.as_slice())?;
            }
            Some(kept) => {
                fresh.insert(key.as_slice(), kept.as_slice())?;
            }
        }
    }
    Ok(stripped)
}
