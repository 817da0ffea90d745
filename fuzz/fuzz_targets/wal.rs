//! Recovery of a data directory whose log is fuzzed. The first byte picks the mode: the
//! bytes after a valid segment header as they are (framing and checksums fuzzed too), or
//! cut into records (a 2-byte length, then the record) that the log itself frames with
//! valid checksums, so that the decoder and the apply path are reached.
#![no_main]

use proxima::persist::wal::{Wal, WalOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal_dir = dir.path().join("wal");
    {
        let wal = Wal::open(&wal_dir, 1, WalOptions::default()).expect("a fresh log");
        if mode % 2 == 1 {
            for record in records(rest) {
                let (_, ticket) = wal.append(record.to_vec());
                ticket.wait().expect("written");
            }
        }
    }
    if mode % 2 == 0 {
        use std::io::Write;
        let (_, segment) = proxima::persist::wal::list_segments(&wal_dir)
            .expect("listed")
            .pop()
            .expect("the segment");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(segment)
            .expect("open");
        file.write_all(rest).expect("append");
    }
    let engine = proxima_fuzz::engine();
    let _ = engine.recover(dir.path(), WalOptions::default());
});

/// `data` cut into records: each a little-endian `u16` length, then that many bytes.
fn records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + len]);
        data = &data[2 + len..];
    }
    out
}
