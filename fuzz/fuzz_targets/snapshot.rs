//! Recovery of a data directory whose snapshot is fuzzed. The first byte picks the mode:
//! the whole file as it is, or the rest cut into items (a 2-byte length, then the item)
//! sealed with a valid header and checksums, so that the item decoder and the restore path
//! are reached.
#![no_main]

use proxima::persist::wal::WalOptions;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut payload = Vec::new();
        let mut data = rest;
        while data.len() >= 2 {
            let len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
            payload.extend_from_slice(&(len as u32).to_le_bytes());
            payload.extend_from_slice(&data[2..2 + len]);
            data = &data[2 + len..];
        }
        proxima::persist::snapshot::seal(0, &payload)
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).expect("dir");
    std::fs::write(snapshots.join("snap-0.psnap"), file).expect("write");
    let engine = proxima_fuzz::engine();
    let _ = engine.recover(dir.path(), WalOptions::default());
});
