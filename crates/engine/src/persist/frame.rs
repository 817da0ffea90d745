//! Record framing: `[u32 length][u32 CRC-32 of the body][body]`, little-endian.
//!
//! A reader tells apart the three ways a frame can end a buffer: complete and intact, cut
//! short (a torn write: the buffer ends inside it), and damaged (the checksum does not match).

/// Bytes of a frame header.
pub const HEADER: usize = 8;
/// The largest body a frame may carry (a whole import is one record).
pub const MAX_BODY: usize = 1 << 30;

/// Appends a frame holding `body` to `out`.
pub fn push(out: &mut Vec<u8>, body: &[u8]) {
    push_parts(out, body, &[]);
}

/// Appends one frame whose body is `head` followed by `tail`, without first copying them
/// into one buffer.
pub fn push_parts(out: &mut Vec<u8>, head: &[u8], tail: &[u8]) {
    let len = u32::try_from(head.len() + tail.len()).expect("bodies are under MAX_BODY");
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    crc.update(tail);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
}

/// What is at an offset of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// An intact frame, and the offset after it.
    Frame(&'a [u8], usize),
    /// The buffer ends here.
    End,
    /// The buffer ends inside a frame.
    Torn,
    /// The frame is damaged: a bad length or checksum.
    Damaged(String),
}

/// Reads the frame at `offset`.
pub fn next(buf: &[u8], offset: usize) -> Next<'_> {
    let rest = &buf[offset.min(buf.len())..];
    if rest.is_empty() {
        return Next::End;
    }
    if rest.len() < HEADER {
        return Next::Torn;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len > MAX_BODY {
        return Next::Damaged(format!("frame length {len} exceeds the maximum {MAX_BODY}"));
    }
    if rest.len() < HEADER + len {
        return Next::Torn;
    }
    let body = &rest[HEADER..HEADER + len];
    if crc32fast::hash(body) != crc {
        return Next::Damaged("checksum mismatch".to_string());
    }
    Next::Frame(body, offset + HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_told_from_tearing() {
        let mut buf = Vec::new();
        push(&mut buf, b"hello");
        push(&mut buf, b"world!");
        let Next::Frame(first, at) = next(&buf, 0) else {
            panic!("first frame")
        };
        assert_eq!(first, b"hello");
        let Next::Frame(second, end) = next(&buf, at) else {
            panic!("second frame")
        };
        assert_eq!((second, end), (&b"world!"[..], buf.len()));
        assert_eq!(next(&buf, end), Next::End);
        assert_eq!(next(&buf[..buf.len() - 1], at), Next::Torn);
        let mut flipped = buf.clone();
        flipped[HEADER + 1] ^= 0x20;
        assert!(matches!(next(&flipped, 0), Next::Damaged(_)));
    }
}
