//! A chunk's key in the store: the trip's id, length-prefixed so that one trip's chunks are
//! one contiguous range and no trip's range holds another's, then the chunk's first `ts`,
//! big-endian with its sign bit flipped so that byte order is time order.

/// The bytes every key of `trip`'s chunks starts with.
pub fn trip_prefix(trip: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + trip.len() + 8);
    trip_prefix_into(trip, &mut out);
    out
}

/// [`trip_prefix`] into `out`, replacing what it held (for a loop over many trips, one
/// buffer rather than an allocation a trip).
pub fn trip_prefix_into(trip: &str, out: &mut Vec<u8>) {
    let id = trip.as_bytes();
    // Trip ids are 1 to 128 bytes (the API's id rule), so the length fits its byte; a
    // longer one would share the prefix of others.
    debug_assert!(
        id.len() <= usize::from(u8::MAX),
        "a trip id of {} bytes",
        id.len()
    );
    out.clear();
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id);
}

/// The bytes of a trip's id that [`id_head`] holds.
pub const ID_HEAD_BYTES: usize = 32;

/// The first [`ID_HEAD_BYTES`] bytes of a trip's id, zero-padded, as two big-endian
/// numbers. After the id's length (the first byte of [`trip_prefix`]) they order ids as
/// their keys' bytes do, and ids of at most [`ID_HEAD_BYTES`] that agree on them are
/// equal; longer ones that agree need their whole bytes compared. Sorting and merging by
/// numbers rather than by the ids' bytes keeps both from reading the ids themselves.
pub fn id_head(id: &[u8]) -> [u128; 2] {
    let mut bytes = [0u8; ID_HEAD_BYTES];
    let n = id.len().min(ID_HEAD_BYTES);
    bytes[..n].copy_from_slice(&id[..n]);
    let (head, tail) = bytes.split_at(16);
    [
        u128::from_be_bytes(head.try_into().expect("16 bytes")),
        u128::from_be_bytes(tail.try_into().expect("16 bytes")),
    ]
}

/// The key of `trip`'s chunk starting at `ts`.
pub fn chunk_key(prefix: &[u8], ts: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 8);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
    out
}

/// The first `ts` of a chunk, from its key.
pub fn chunk_start(key: &[u8]) -> i64 {
    let mut tail = [0u8; 8];
    if key.len() >= 8 {
        tail.copy_from_slice(&key[key.len() - 8..]);
    }
    (u64::from_be_bytes(tail) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::testing::proptest_config(256))]

        /// Keys sort by trip, then by time; each trip's keys share its prefix alone.
        #[test]
        fn keys_sort_by_trip_then_time(
            a in "[a-z]{1,4}", b in "[a-z]{1,4}", ta in any::<i64>(), tb in any::<i64>(),
        ) {
            let (pa, pb) = (trip_prefix(&a), trip_prefix(&b));
            let (ka, kb) = (chunk_key(&pa, ta), chunk_key(&pb, tb));
            prop_assert_eq!(chunk_start(&ka), ta);
            if a == b {
                prop_assert_eq!(ka.cmp(&kb), ta.cmp(&tb));
            } else {
                prop_assert!(!ka.starts_with(&pb) && !kb.starts_with(&pa));
            }
        }
    }
}
