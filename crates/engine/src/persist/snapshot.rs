//! Snapshot files: the whole state as a stream of items, with a checksummed header.
//!
//! # File
//! `<dir>/snap-<seq, 20 digits>.psnap`, where `seq` is the last log record whose effects are
//! all inside. Layout: a 40-byte header (magic `PRXMSNAP`, `u32` version, `u32` reserved,
//! `u64` seq, `u64` payload length, `u32` CRC-32 of the payload, `u32` CRC-32 of the
//! header's first 36 bytes) and then the payload: items, each `[u32 length][bincode bytes]`.
//!
//! A snapshot is written to a temporary file, its header filled in last, fsynced, and renamed
//! into place (then the directory is fsynced), so a crash leaves either the old set of
//! snapshots or the new one, never a half-written file under a snapshot's name. Reading
//! checks the whole payload's checksum before handing out a single item.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{BoxError, PersistError, bincode_config, numbered_files, sync_dir};

/// Magic bytes opening every snapshot.
pub const MAGIC: &[u8; 8] = b"PRXMSNAP";
/// The snapshot format this build writes (and the newest it reads).
pub const VERSION: u32 = 5;
const HEADER: usize = 40;

/// A finished snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Where it is.
    pub path: PathBuf,
    /// The last log record inside it.
    pub seq: u64,
    /// Its size.
    pub bytes: u64,
}

/// Writes one snapshot, item by item, without holding it in memory.
pub struct SnapshotWriter {
    out: BufWriter<fs_err::File>,
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    seq: u64,
    crc: crc32fast::Hasher,
    len: u64,
    scratch: Vec<u8>,
}

impl SnapshotWriter {
    /// Starts the snapshot of state up to log record `seq` in `dir`.
    pub fn create(dir: &Path, seq: u64) -> Result<Self, PersistError> {
        fs_err::create_dir_all(dir)?;
        let path = dir.join(format!("snap-{seq:020}.psnap"));
        let tmp = dir.join(format!("snap-{seq:020}.psnap.tmp"));
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER])?;
        Ok(Self {
            out,
            tmp,
            path,
            dir: dir.to_path_buf(),
            seq,
            crc: crc32fast::Hasher::new(),
            len: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends one item.
    pub fn item<T: serde::Serialize>(&mut self, item: &T) -> Result<(), PersistError> {
        self.scratch.clear();
        bincode::serde::encode_into_std_write(item, &mut self.scratch, bincode_config())?;
        let len = u32::try_from(self.scratch.len()).map_err(|_| PersistError::ItemTooLarge)?;
        let len = len.to_le_bytes();
        self.crc.update(&len);
        self.crc.update(&self.scratch);
        self.out.write_all(&len)?;
        self.out.write_all(&self.scratch)?;
        self.len += 4 + self.scratch.len() as u64;
        Ok(())
    }

    /// Fills in the header, makes the file durable and moves it into place.
    pub fn finish(self) -> Result<SnapshotFile, PersistError> {
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| PersistError::Io(e.into_error()))?;
        let header = header(self.seq, self.len, self.crc.finalize());
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()?;
        drop(file);
        fs_err::rename(&self.tmp, &self.path)?;
        sync_dir(&self.dir)?;
        Ok(SnapshotFile {
            path: self.path,
            seq: self.seq,
            bytes: HEADER as u64 + self.len,
        })
    }
}

/// The bytes of a snapshot file of `payload` as it stands (items, each a little-endian
/// `u32` length and its bytes) at log position `seq`, with its header and checksums: what
/// [`SnapshotWriter`] would write, for tools and fuzzers that make snapshots by hand.
pub fn seal(seq: u64, payload: &[u8]) -> Vec<u8> {
    let header = header(seq, payload.len() as u64, crc32fast::hash(payload));
    [&header[..], payload].concat()
}

/// A snapshot's header: magic, version, the log position, the payload's length and
/// checksum, and the header's own checksum.
fn header(seq: u64, len: u64, payload_crc: u32) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header[24..32].copy_from_slice(&len.to_le_bytes());
    header[32..36].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&header[..36]);
    header[36..40].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// The snapshots in `dir`, newest (highest seq) first. Leftover temporary files are removed.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    for (_, interrupted) in numbered_files(dir, "snap-", ".psnap.tmp")? {
        fs_err::remove_file(&interrupted)?;
    }
    let mut found = numbered_files(dir, "snap-", ".psnap")?;
    found.reverse();
    Ok(found)
}

/// Reads a snapshot: checks its header and its whole payload's checksum, then passes each
/// item's bytes to `item` in order. Returns the snapshot's seq.
pub fn read(
    path: &Path,
    mut item: impl FnMut(&[u8]) -> Result<(), BoxError>,
) -> Result<u64, PersistError> {
    let corrupt = |offset: u64, reason: String| PersistError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut file = fs_err::File::open(path)?;
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header)
        .map_err(|_| corrupt(0, "shorter than a snapshot header".to_string()))?;
    if &header[..8] != MAGIC {
        return Err(corrupt(0, "not a Proxima snapshot (bad magic)".to_string()));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if crc32fast::hash(&header[..36])
        != u32::from_le_bytes(header[36..40].try_into().expect("4 bytes"))
    {
        return Err(corrupt(0, "header checksum mismatch".to_string()));
    }
    if version > VERSION {
        return Err(PersistError::NewerVersion {
            path: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    let seq = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    if seq == u64::MAX {
        // No log record can follow it: a writer never gives this number, so it is damage.
        return Err(corrupt(
            16,
            "the header's sequence is u64::MAX, which no log reaches".to_string(),
        ));
    }
    let len = u64::from_le_bytes(header[24..32].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[32..36].try_into().expect("4 bytes"));

    // First pass: the checksum of the whole payload, in bounded memory.
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = crc32fast::Hasher::new();
    let copied = std::io::copy(&mut (&mut reader).take(len), &mut HashWriter(&mut hasher))?;
    if copied != len {
        return Err(corrupt(
            HEADER as u64 + copied,
            format!("payload is {copied} bytes, the header says {len}"),
        ));
    }
    if hasher.finalize() != crc {
        return Err(corrupt(
            HEADER as u64,
            "payload checksum mismatch".to_string(),
        ));
    }
    // Second pass: the items.
    let mut file = reader.into_inner();
    file.seek(SeekFrom::Start(HEADER as u64))?;
    let mut reader = BufReader::with_capacity(1 << 20, file).take(len);
    let mut offset = HEADER as u64;
    let mut buf = Vec::new();
    let mut len_bytes = [0u8; 4];
    let end = HEADER as u64 + len;
    while offset < end {
        if end - offset < 4 {
            return Err(corrupt(offset, "an item's length is cut off".to_string()));
        }
        reader.read_exact(&mut len_bytes)?;
        let n = u32::from_le_bytes(len_bytes) as usize;
        // The length is checked against the payload left before any buffer is sized by it:
        // a damaged length must be "corrupt" (so recovery falls back to an older
        // snapshot), not a 4 GiB allocation.
        if n as u64 > end - offset - 4 {
            return Err(corrupt(
                offset,
                format!(
                    "an item of {n} bytes is longer than the {} bytes left",
                    end - offset - 4
                ),
            ));
        }
        buf.resize(n, 0);
        reader.read_exact(&mut buf)?;
        item(&buf).map_err(|source| PersistError::BadRecord {
            path: path.to_path_buf(),
            offset,
            seq: None,
            source,
        })?;
        offset += 4 + n as u64;
    }
    Ok(seq)
}

struct HashWriter<'a>(&'a mut crc32fast::Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, seq: u64, items: &[&str]) -> SnapshotFile {
        let mut w = SnapshotWriter::create(dir, seq).expect("create");
        for i in items {
            w.item(i).expect("item");
        }
        w.finish().expect("finish")
    }

    fn items(path: &Path) -> Result<(u64, Vec<String>), PersistError> {
        let mut out = Vec::new();
        let seq = read(path, |bytes| {
            out.push(super::super::decode::<String>(bytes)?);
            Ok(())
        })?;
        Ok((seq, out))
    }

    fn sealed(payload: &[u8]) -> Vec<u8> {
        seal(9, payload)
    }

    #[test]
    fn a_sealed_payload_is_what_the_writer_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = write(dir.path(), 4, &["a", "bc"]);
        let written = std::fs::read(&file.path).expect("read");
        assert_eq!(seal(4, &written[HEADER..]), written);
    }

    #[test]
    fn an_item_longer_than_the_payload_left_is_corrupt_before_anything_is_allocated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("snap-9.psnap");
        // 78 bytes in all, one item claiming 2.8 GB: the fuzzer's finding.
        let mut payload = 0xa800_0000u32.to_le_bytes().to_vec();
        payload.resize(38, 7);
        std::fs::write(&path, sealed(&payload)).expect("write");
        let err = items(&path).expect_err("an impossible length");
        assert!(err.is_damage(), "{err}");
        assert!(
            err.to_string().contains("longer than the 34 bytes left"),
            "{err}"
        );
        // An item's length cut off by the payload's end is damage too.
        std::fs::write(&path, sealed(&[1, 0])).expect("write");
        assert!(items(&path).expect_err("cut short").is_damage());
        // And a well-formed payload reads.
        let mut good = 2u32.to_le_bytes().to_vec();
        good.extend_from_slice(&[1, b'a']);
        std::fs::write(&path, sealed(&good)).expect("write");
        assert_eq!(items(&path).expect("reads"), (9, vec!["a".to_string()]));
    }

    #[test]
    fn items_round_trip_and_the_newest_is_listed_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        write(dir.path(), 3, &["a"]);
        let file = write(dir.path(), 7, &["x", "y", "z"]);
        assert_eq!(
            fs_err::metadata(&file.path).expect("meta").len(),
            file.bytes
        );
        let listed: Vec<u64> = list(dir.path())
            .expect("list")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(listed, [7, 3]);
        assert_eq!(
            items(&file.path).expect("read"),
            (7, vec!["x".into(), "y".into(), "z".into()])
        );
    }

    #[test]
    fn a_flipped_byte_anywhere_is_detected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = write(dir.path(), 1, &["some", "items", "here"]);
        let original = fs_err::read(&file.path).expect("read");
        for i in 0..original.len() {
            let mut bytes = original.clone();
            bytes[i] ^= 0x04;
            fs_err::write(&file.path, &bytes).expect("write");
            assert!(
                items(&file.path).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_snapshot_from_a_newer_build_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = write(dir.path(), 1, &["x"]);
        let mut bytes = fs_err::read(&file.path).expect("read");
        bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
        let header_crc = crc32fast::hash(&bytes[..36]);
        bytes[36..40].copy_from_slice(&header_crc.to_le_bytes());
        fs_err::write(&file.path, &bytes).expect("write");
        assert!(matches!(
            items(&file.path),
            Err(PersistError::NewerVersion { .. })
        ));
    }

    #[test]
    fn an_item_its_reader_refuses_is_damage_at_its_offset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = write(dir.path(), 1, &["a", "b"]);
        let mut items = 0;
        let refuse_the_second = |_: &[u8]| {
            items += 1;
            (items != 2).then_some(()).ok_or_else(|| "refused".into())
        };
        let err = read(&file.path, refuse_the_second).expect_err("the second item is refused");
        assert!(err.is_damage(), "{err}");
        // The header, then the first item: a 4-byte length and "a" (a length byte and one).
        let second = HEADER as u64 + 4 + 2;
        assert!(
            matches!(&err, PersistError::BadRecord { offset, seq: None, .. } if *offset == second),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with(&format!("offset {second}: refused")),
            "{err}"
        );
        assert_eq!(
            std::error::Error::source(&err).map(ToString::to_string),
            Some("refused".to_string()),
            "the reader's error is kept as the source"
        );
    }
}
