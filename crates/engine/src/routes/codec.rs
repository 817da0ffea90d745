//! A chunk of route points as bytes: `ts` and the coordinates delta-encoded, in the spirit
//! of the encoded-polyline format and Gorilla.
//!
//! Coordinates are stored in units of 10⁻⁷ degree (at most 1.1 cm on the ground, finer
//! than any phone's fix). A chunk holds the points in `ts` order, each `ts` once, that
//! fit [`MAX_CHUNK_BYTES`] ([`split`], [`fitting`]):
//!
//! - a header: the point count (varint), then the first point's `ts` (zigzag varint) and
//!   coordinates (zigzag varints of the units);
//! - then, for each following point, how its `ts` step differs from the step before
//!   (zigzag varint: a delta of deltas, as Gorilla does) and the coordinate deltas
//!   (zigzag varints).
//!
//! A phone reporting every 5 s while walking moves a few metres a point: its steps repeat,
//! so the delta of deltas takes 1 byte, and a coordinate delta of ~500 units 2 bytes each:
//! a point costs about 5 bytes against 24 as three raw numbers (6 with plain `ts` deltas).
//! On disk, with the store's keys, figures and pages, a walk with a fix every 5 s and 2 m
//! of noise takes 6.9 bytes a point once compacted (the `route_pieces` example, `walk`).

use super::RoutePoint;

/// The most points one chunk holds (a bound for reading damaged bytes; a chunk is cut by
/// [`MAX_CHUNK_BYTES`] long before, at 3 bytes a point or more).
pub const MAX_CHUNK_POINTS: usize = 1_024;

/// The most bytes a chunk of more than one point takes: two chunks with their keys (a
/// trip id of up to 32 bytes: 41-byte keys) and a leaf's header (4 bytes and 8 a pair)
/// fill one 4 KiB page of `redb`. Chunks cut at 256 points (about 1,500 bytes for a walk)
/// left a quarter of each page unused even after compacting: measured with the
/// `route_pieces` example, 25,000 trips walking, 8.44 bytes a point on disk compacted, of
/// which 1.99 unused room in the chunks' pages.
pub const MAX_CHUNK_BYTES: usize = 1_990;

/// Units of a degree stored: 10⁷ a degree.
const UNITS: f64 = 1e7;

/// Why a chunk's bytes could not be read (a damaged store).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end in the middle of a number.
    #[error("a route chunk ends in the middle of a point")]
    Truncated,
    /// A number is longer than any this encoding writes.
    #[error("a route chunk holds a number longer than 10 bytes")]
    Overlong,
    /// The points are not in increasing `ts` order, or a coordinate is off the globe.
    #[error("a route chunk holds a point out of order or off the globe")]
    Invalid,
}

/// A coordinate in stored units.
pub fn to_units(degrees: f64) -> i64 {
    (degrees * UNITS).round() as i64
}

/// A coordinate back in degrees.
pub fn from_units(units: i64) -> f64 {
    units as f64 / UNITS
}

/// `point` as a chunk holds it: its coordinates to the stored precision.
pub fn as_stored(point: RoutePoint) -> RoutePoint {
    RoutePoint {
        ts: point.ts,
        lat: from_units(to_units(point.lat)),
        lon: from_units(to_units(point.lon)),
    }
}

/// Appends the bytes of `points` (in increasing `ts` order, each once) to `out`.
pub fn encode(points: &[RoutePoint], out: &mut Vec<u8>) {
    put_varint(out, points.len() as u64);
    encode_body(None, points, out);
}

/// Where a chunk's points end: what writing more after them needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEnd {
    /// How many points the chunk holds.
    pub count: usize,
    /// The bytes of its count.
    header_len: usize,
    /// The last point's `ts` and coordinates in stored units, and its `ts` step from the
    /// point before (0 for a chunk of one point).
    last: (i64, i64, i64),
    step: i64,
}

impl ChunkEnd {
    /// The last point's `ts`.
    pub fn last_ts(&self) -> i64 {
        self.last.0
    }
}

/// Reads a chunk through to its end without keeping its points (`None`: it holds none).
pub fn chunk_end(bytes: &[u8]) -> Result<Option<ChunkEnd>, CodecError> {
    read_chunk(bytes, |_, _| {})
}

/// Writes to `out` the chunk `bytes` (which ends at `end`) with `points` after its own (in
/// increasing `ts` order, each later than its last): its bytes copied and the new points'
/// appended, not a point of it decoded and encoded again. A route grows at its end, and
/// its last chunk is rewritten at each settling: encoding it whole each time cost a
/// settling in proportion to the chunk's length, not to the points added.
pub fn append(bytes: &[u8], end: &ChunkEnd, points: &[RoutePoint], out: &mut Vec<u8>) {
    put_varint(out, (end.count + points.len()) as u64);
    out.extend_from_slice(&bytes[end.header_len..]);
    encode_body(Some((end.last, end.step)), points, out);
}

/// How many of `points` (in increasing `ts` order, each once) a chunk takes: after the
/// chunk `bytes` ending at `end`, or starting a new one (`None`), within
/// [`MAX_CHUNK_BYTES`] and [`MAX_CHUNK_POINTS`]. A new chunk takes at least one point.
pub fn fitting(chunk: Option<(&[u8], &ChunkEnd)>, points: &[RoutePoint]) -> usize {
    let (mut count, mut body, mut previous) = match chunk {
        Some((bytes, end)) => (
            end.count,
            bytes.len() - end.header_len,
            Some((end.last, end.step)),
        ),
        None => (0, 0, None),
    };
    let mut taken = 0;
    for p in points {
        let (numbers, state) = point_numbers(previous, p);
        let bytes: usize = numbers.into_iter().map(varint_len).sum();
        let total = varint_len(count as u64 + 1) + body + bytes;
        if count > 0 && (count + 1 > MAX_CHUNK_POINTS || total > MAX_CHUNK_BYTES) {
            break;
        }
        count += 1;
        body += bytes;
        taken += 1;
        previous = Some(state);
    }
    taken
}

/// `points` (in increasing `ts` order, each once) cut into chunks, each as many as
/// [`fitting`] takes.
pub fn split(points: &[RoutePoint]) -> impl Iterator<Item = &[RoutePoint]> {
    let mut rest = points;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (part, tail) = rest.split_at(fitting(None, rest).max(1));
        rest = tail;
        Some(part)
    })
}

/// The bytes of `n` as a varint.
fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends the points' bytes after the point `previous` (with its step), or as a chunk's
/// first points.
fn encode_body(mut previous: Option<Previous>, points: &[RoutePoint], out: &mut Vec<u8>) {
    for p in points {
        let (numbers, state) = point_numbers(previous, p);
        for n in numbers {
            put_varint(out, n);
        }
        previous = Some(state);
    }
}

/// A point as the next one is written against: its `ts` and coordinates in stored units,
/// and its `ts` step from the point before (0 for a chunk's first).
type Previous = ((i64, i64, i64), i64);

/// The three numbers written for `p` after `previous`, or as a chunk's first point; and
/// `p` as the next point's `previous`.
fn point_numbers(previous: Option<Previous>, p: &RoutePoint) -> ([u64; 3], Previous) {
    let (ts, lat, lon) = (p.ts, to_units(p.lat), to_units(p.lon));
    match previous {
        None => ([zigzag(ts), zigzag(lat), zigzag(lon)], ((ts, lat, lon), 0)),
        Some(((pts, plat, plon), step)) => {
            debug_assert!(ts > pts, "points in increasing ts order");
            let this_step = ts.wrapping_sub(pts);
            (
                [
                    zigzag(this_step.wrapping_sub(step)),
                    zigzag(lat.wrapping_sub(plat)),
                    zigzag(lon.wrapping_sub(plon)),
                ],
                ((ts, lat, lon), this_step),
            )
        }
    }
}

/// The points of a chunk, appended to `out`.
pub fn decode(bytes: &[u8], out: &mut Vec<RoutePoint>) -> Result<(), CodecError> {
    read_chunk(bytes, |left, point| {
        // Room for the rest of the chunk (a no-op after the first point).
        out.reserve(left);
        out.push(point);
    })?;
    Ok(())
}

/// Reads a chunk's points in order, giving each to `each` with how many are left
/// (itself included), and
/// where the chunk ends; damaged bytes (out of order, off the globe, cut short or with
/// bytes left over) are an error.
fn read_chunk(
    bytes: &[u8],
    mut each: impl FnMut(usize, RoutePoint),
) -> Result<Option<ChunkEnd>, CodecError> {
    let mut rest = bytes;
    let count = take_varint(&mut rest)?;
    if count as usize > MAX_CHUNK_POINTS * 2 {
        return Err(CodecError::Invalid);
    }
    let (count, header_len) = (count as usize, bytes.len() - rest.len());
    let mut end: Option<ChunkEnd> = None;
    for i in 0..count {
        let (last, step) = match end {
            None => (
                (
                    unzigzag(take_varint(&mut rest)?),
                    unzigzag(take_varint(&mut rest)?),
                    unzigzag(take_varint(&mut rest)?),
                ),
                0,
            ),
            Some(ChunkEnd {
                last: (pts, plat, plon),
                step,
                ..
            }) => {
                // Wrapping, as the encoder wrote it: any increasing times read back.
                let step = step.wrapping_add(unzigzag(take_varint(&mut rest)?));
                let ts = pts.wrapping_add(step);
                if ts <= pts {
                    return Err(CodecError::Invalid);
                }
                (
                    (
                        ts,
                        plat.wrapping_add(unzigzag(take_varint(&mut rest)?)),
                        plon.wrapping_add(unzigzag(take_varint(&mut rest)?)),
                    ),
                    step,
                )
            }
        };
        let point = RoutePoint {
            ts: last.0,
            lat: from_units(last.1),
            lon: from_units(last.2),
        };
        if !(-90.0..=90.0).contains(&point.lat) || !(-180.0..=180.0).contains(&point.lon) {
            return Err(CodecError::Invalid);
        }
        each(count - i, point);
        end = Some(ChunkEnd {
            count: end.map_or(1, |e| e.count + 1),
            header_len,
            last,
            step,
        });
    }
    if rest.is_empty() {
        Ok(end)
    } else {
        Err(CodecError::Invalid)
    }
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, CodecError> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Ok(n);
        }
    }
    if bytes.len() >= 10 {
        Err(CodecError::Overlong)
    } else {
        Err(CodecError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn point() -> impl Strategy<Value = (i64, f64, f64)> {
        (1i64..100_000_000, -90.0f64..=90.0, -180.0f64..=180.0)
    }

    /// Points from `start`, each `ts` a step after the one before.
    fn walk(start: i64, steps: &[(i64, f64, f64)]) -> Vec<RoutePoint> {
        let mut ts = start;
        steps
            .iter()
            .map(|&(dt, lat, lon)| {
                ts += dt;
                RoutePoint { ts, lat, lon }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(256))]

        /// Any points, in order, read back as written, to the stored precision.
        #[test]
        fn points_read_back_as_written(
            start in i64::MIN / 4..i64::MAX / 4,
            steps in proptest::collection::vec(point(), 0..256),
        ) {
            let points = walk(start, &steps);
            let mut bytes = Vec::new();
            encode(&points, &mut bytes);
            let mut back = Vec::new();
            decode(&bytes, &mut back).expect("decodes");
            prop_assert_eq!(back.len(), points.len());
            for (a, b) in points.iter().zip(&back) {
                prop_assert_eq!(a.ts, b.ts);
                prop_assert!((a.lat - b.lat).abs() <= 0.5e-7 + 1e-12);
                prop_assert!((a.lon - b.lon).abs() <= 0.5e-7 + 1e-12);
            }
        }

        /// A chunk with points appended to its bytes is the chunk of all the points, and
        /// its end is read without decoding it.
        #[test]
        fn appending_to_a_chunk_equals_encoding_it_whole(
            start in i64::MIN / 4..i64::MAX / 4,
            steps in proptest::collection::vec(point(), 1..256),
            cut in 0usize..256,
        ) {
            let points = walk(start, &steps);
            let cut = cut.min(points.len() - 1).max(1);
            let (old, new) = points.split_at(cut);
            let mut whole = Vec::new();
            encode(&points, &mut whole);
            let mut first = Vec::new();
            encode(old, &mut first);
            let end = chunk_end(&first).expect("reads").expect("holds points");
            prop_assert_eq!(end.count, old.len());
            let mut appended = Vec::new();
            append(&first, &end, new, &mut appended);
            prop_assert_eq!(&appended, &whole);
            let mut none = Vec::new();
            encode(&[], &mut none);
            prop_assert_eq!(chunk_end(&none), Ok(None));
        }

        /// Points cut into chunks: in order, each chunk of more than one point within
        /// the bounds, and every chunk but the last full (its next point would not fit);
        /// a chunk appended to takes what fits and no more.
        #[test]
        fn chunks_are_cut_where_the_next_point_would_not_fit(
            start in i64::MIN / 4..i64::MAX / 4,
            steps in proptest::collection::vec(point(), 1..1_500),
            cut in 1usize..1_500,
        ) {
            let points = walk(start, &steps);
            let parts: Vec<&[RoutePoint]> = split(&points).collect();
            prop_assert_eq!(parts.concat(), points.clone());
            let encoded = |part: &[RoutePoint]| {
                let mut bytes = Vec::new();
                encode(part, &mut bytes);
                bytes.len()
            };
            let mut at = 0;
            for part in &parts {
                prop_assert!(part.len() == 1 || (encoded(part) <= MAX_CHUNK_BYTES && part.len() <= MAX_CHUNK_POINTS));
                at += part.len();
                if let Some(next) = points.get(at) {
                    let mut more = part.to_vec();
                    more.push(*next);
                    prop_assert!(encoded(&more) > MAX_CHUNK_BYTES || more.len() > MAX_CHUNK_POINTS);
                }
            }
            let first = parts[0];
            let cut = cut.min(first.len());
            let mut bytes = Vec::new();
            encode(&first[..cut], &mut bytes);
            let end = chunk_end(&bytes).expect("reads").expect("holds points");
            let rest = &points[cut..];
            let taken = fitting(Some((&bytes, &end)), rest);
            // The chunk takes exactly the points its split took.
            prop_assert_eq!(cut + taken, first.len());
            let mut appended = Vec::new();
            append(&bytes, &end, &rest[..taken], &mut appended);
            prop_assert_eq!(appended.len(), encoded(first));
        }

        /// Damaged bytes are an error, never a panic.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut out = Vec::new();
            let decoded = decode(&bytes, &mut out);
            let end = chunk_end(&bytes);
            // Whatever decodes has its end read, after as many points.
            if decoded.is_ok() {
                prop_assert_eq!(end.map(|e| e.map_or(0, |e| e.count)), Ok(out.len()));
            }
        }
    }

    #[test]
    fn a_walk_reported_every_five_seconds_costs_about_five_bytes_a_point() {
        // 200 points, about 5 s (a phone's timer jitters by milliseconds) and ~4 m apart.
        let points: Vec<RoutePoint> = (0..200)
            .map(|i| RoutePoint {
                ts: 1_800_000_000_000 + i * 5_000 + (i * 37) % 50,
                lat: 60.17 + i as f64 * 3e-5,
                lon: 24.94 + i as f64 * 2e-5,
            })
            .collect();
        let mut bytes = Vec::new();
        encode(&points, &mut bytes);
        let per_point = bytes.len() as f64 / points.len() as f64;
        assert!(per_point <= 5.5, "{per_point} bytes a point");
    }

    #[test]
    fn a_truncated_chunk_is_an_error() {
        let points = [
            RoutePoint {
                ts: 1,
                lat: 1.0,
                lon: 2.0,
            },
            RoutePoint {
                ts: 2,
                lat: 1.5,
                lon: 2.5,
            },
        ];
        let mut bytes = Vec::new();
        encode(&points, &mut bytes);
        for cut in 0..bytes.len() {
            let mut out = Vec::new();
            assert!(decode(&bytes[..cut], &mut out).is_err(), "cut at {cut}");
        }
    }
}
