//! The log against its promises: order across segments and restarts, torn tails cut off,
//! damage named, newer versions refused, old segments removed.

use super::*;

type Records = Vec<(u64, Vec<u8>)>;

fn records(dir: &Path, after: u64) -> Result<(Records, Replayed), PersistError> {
    let mut seen = Vec::new();
    let replayed = replay(dir, after, |seq, body| {
        seen.push((seq, body.to_vec()));
        Ok(())
    })?;
    Ok((seen, replayed))
}

fn write(dir: &Path, first: u64, bodies: &[&[u8]], options: WalOptions) {
    let wal = Wal::open(dir, first, options).expect("open");
    for body in bodies {
        wal.append(body.to_vec()).1.wait().expect("acknowledged");
    }
    wal.close().expect("close");
}

#[test]
fn records_come_back_in_order_across_segments_and_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tiny = WalOptions {
        fsync: FsyncMode::Always,
        segment_bytes: 64,
    };
    write(dir.path(), 1, &[b"one", b"two", b"three", b"four"], tiny);
    write(dir.path(), 5, &[b"five"], WalOptions::default());
    assert!(
        list_segments(dir.path()).expect("list").len() >= 3,
        "small segments rotate"
    );
    let (seen, replayed) = records(dir.path(), 2).expect("replay");
    let bodies: Vec<&[u8]> = seen.iter().map(|(_, b)| b.as_slice()).collect();
    assert_eq!(bodies, [&b"three"[..], b"four", b"five"]);
    assert_eq!(
        (replayed.last_seq, replayed.records, replayed.torn_bytes),
        (5, 3, 0)
    );
}

#[test]
fn a_torn_last_record_is_cut_off_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        1,
        &[b"kept", b"torn record"],
        WalOptions::default(),
    );
    let (_, path) = list_segments(dir.path())
        .expect("list")
        .pop()
        .expect("a segment");
    let len = fs_err::metadata(&path).expect("meta").len();
    let file = fs_err::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len - 4).expect("truncate");
    let (seen, replayed) = records(dir.path(), 0).expect("a torn tail is not an error");
    assert_eq!(seen, [(1, b"kept".to_vec())]);
    assert_eq!(replayed.torn_bytes, (frame::HEADER + 8 + 11 - 4) as u64);
    let (again, replayed) = records(dir.path(), 0).expect("replay after the cut");
    assert_eq!(
        (again.len(), replayed.torn_bytes),
        (1, 0),
        "the cut is permanent"
    );
}

#[test]
fn damage_in_the_middle_names_the_file_and_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        1,
        &[b"first", b"second", b"third"],
        WalOptions::default(),
    );
    let (_, path) = list_segments(dir.path())
        .expect("list")
        .pop()
        .expect("a segment");
    let mut bytes = fs_err::read(&path).expect("read");
    let second = HEADER + frame::HEADER + 8 + 5;
    bytes[second + frame::HEADER + 9] ^= 0x01;
    fs_err::write(&path, &bytes).expect("write");
    match records(dir.path(), 0) {
        Err(PersistError::Corrupt {
            path: p, offset, ..
        }) => {
            assert_eq!((p, offset), (path, second as u64));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_segment_from_a_newer_build_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), 1, &[b"x"], WalOptions::default());
    let (_, path) = list_segments(dir.path())
        .expect("list")
        .pop()
        .expect("a segment");
    let mut bytes = fs_err::read(&path).expect("read");
    bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    fs_err::write(&path, &bytes).expect("write");
    let err = records(dir.path(), 0).expect_err("newer version");
    assert!(
        matches!(err, PersistError::NewerVersion { found, .. } if found == VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[test]
fn old_segments_are_removed_but_never_the_current_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), 1, WalOptions::default()).expect("open");
    wal.append(b"a".to_vec()).1.wait().expect("ack");
    wal.rotate().wait().expect("rotate");
    wal.append(b"b".to_vec()).1.wait().expect("ack");
    assert_eq!(wal.remove_segments_before(2).expect("remove"), 1);
    assert_eq!(
        wal.remove_segments_before(100).expect("remove"),
        0,
        "the current segment stays"
    );
    wal.close().expect("close");
    let (seen, _) = records(dir.path(), 1).expect("replay after a snapshot of record 1");
    assert_eq!(seen, [(2, b"b".to_vec())]);
    let missing = records(dir.path(), 0).expect_err("record 1 is gone");
    assert!(
        missing.to_string().contains("records from 1 are needed"),
        "{missing}"
    );
}

#[test]
fn a_record_the_caller_refuses_stops_the_replay_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        1,
        &[b"one", b"two", b"six"],
        WalOptions::default(),
    );
    let refuse_the_second = |seq, _: &[u8]| {
        (seq != 2)
            .then_some(())
            .ok_or_else(|| "no such thing".into())
    };
    let err = replay(dir.path(), 0, refuse_the_second).expect_err("record 2 is refused");
    assert!(err.is_damage(), "{err}");
    let second = (HEADER + frame::HEADER + 8 + 3) as u64;
    assert!(
        matches!(&err, PersistError::BadRecord { offset, seq: Some(2), .. } if *offset == second),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with(&format!("offset {second}: record 2: no such thing")),
        "{err}"
    );
}
