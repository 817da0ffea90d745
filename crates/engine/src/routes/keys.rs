//! A chunk's key in the store: the trip's id, length-prefixed so that one trip's chunks are
//! one contiguous range and no trip's range holds another's, then the chunk's first `ts`,
//! big-endian with its sign bit flipped so that byte order is time order.

/// The bytes every key of `trip`'s chunks starts with.
pub fn trip_prefix(trip: &str) -> Vec<u8> {
    let id = trip.as_bytes();
    let mut out = Vec::with_capacity(1 + id.len() + 8);
    // Trip ids are 1 to 128 bytes (the API's id rule), so the length fits its byte; a
    // longer one would share the prefix of others.
    debug_assert!(
        id.len() <= usize::from(u8::MAX),
        "a trip id of {} bytes",
        id.len()
    );
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id);
    out
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
