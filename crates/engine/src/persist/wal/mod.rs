//! The write-ahead log: append-only segment files of framed, numbered records.
//!
//! # Files
//! `<dir>/<first seq, 20 digits>.wal`. A segment starts with a 16-byte header (magic
//! `PRXMWAL\0`, `u32` version, `u32` reserved) followed by frames ([`super::frame`]) whose
//! body is the record's sequence number (`u64` LE) and its payload. Sequence numbers rise by
//! one from record to record across segments.
//!
//! # Writing
//! In `batch` and `never` modes, [`Wal::append`] writes the record to the segment itself,
//! under the lock that numbers it, and returns a [`Ticket`] that is already complete: the
//! bytes are with the operating system, which is what those modes promise before an
//! acknowledgement. Handing each record to a writer thread and waking the caller back cost
//! two thread switches per request, the largest item in the profile of single position
//! updates. In `batch` mode the first write after an fsync tells the log's thread, which
//! fsyncs at most 10 ms later; `never` leaves flushing to the OS.
//!
//! In `always` mode, [`Wal::append`] hands the record to the writer thread and returns a
//! pending ticket: the writer takes everything queued, writes it with one `write`, fsyncs
//! once and then completes every ticket of the group (group commit), so many connections
//! share one `fsync`.
//!
//! Either way, sequence numbers are assigned under one short lock together with the write
//! or the hand-off, so the file order is the order of `append` calls.

mod replay;
mod segment;
#[cfg(test)]
mod tests;
mod ticket;
mod writer;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::Mutex;

pub use replay::{Replayed, replay};
pub use segment::list_segments;
pub use ticket::Ticket;

use self::segment::{Segment, sync_file};
use self::ticket::{Ack, Failure};
use self::writer::{Command, Writer, WriterSegment};
use super::{PersistError, frame};

/// Magic bytes opening every segment.
pub const MAGIC: &[u8; 8] = b"PRXMWAL\0";
/// The segment format this build writes (and the newest it reads).
pub const VERSION: u32 = 2;
const HEADER: usize = 16;
/// How long `batch` mode lets acknowledged bytes wait for an fsync.
pub const BATCH_FSYNC_DELAY: Duration = Duration::from_millis(10);
/// The writer writes at most this much per `write`, so one huge backlog does not delay the
/// first acknowledgements.
const MAX_GROUP_BYTES: usize = 8 << 20;

/// When the log calls `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncMode {
    /// Before acknowledging each group of records.
    Always,
    /// At most 10 ms after acknowledging (at most 10 ms of writes at risk on power loss,
    /// none on a process crash).
    #[default]
    Batch,
    /// Never; the operating system flushes when it likes.
    Never,
}

impl std::str::FromStr for FsyncMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "batch" => Ok(Self::Batch),
            "never" => Ok(Self::Never),
            other => Err(format!("expected always, batch or never, got {other:?}")),
        }
    }
}

/// Log tunables.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// When to fsync.
    pub fsync: FsyncMode,
    /// Start a new segment once the current one is this large.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            fsync: FsyncMode::Batch,
            segment_bytes: 64 << 20,
        }
    }
}

/// The log's counters at one moment, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes written to segments (frames and headers).
    pub bytes: u64,
    /// Records appended.
    pub records: u64,
    /// fsync calls.
    pub fsyncs: u64,
    /// Total time spent in fsync, microseconds.
    pub fsync_micros: u64,
}

/// The live counters behind [`WalStats`], bumped by appenders and the writer thread.
#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    records: AtomicU64,
    fsyncs: AtomicU64,
    fsync_micros: AtomicU64,
}

struct Head {
    next_seq: u64,
    tx: mpsc::Sender<Command>,
    /// The segment appends write to, in `batch` and `never` modes; `None` in `always` mode,
    /// where the writer thread owns it.
    direct: Option<Direct>,
}

/// What a direct append needs: the segment and a reused buffer for the frame.
struct Direct {
    segment: Segment,
    frame: Vec<u8>,
}

/// The log, open for appending.
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    head: Mutex<Head>,
    failure: Failure,
    /// `batch` mode: set by the first write after an fsync, cleared by the writer thread
    /// just before it fsyncs.
    dirty: Arc<AtomicBool>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("next_seq", &self.head.lock().next_seq)
            .finish()
    }
}

impl Wal {
    /// Opens the log in `dir` for appending, starting a new segment whose first record will
    /// be `next_seq` (one more than the last record replayed).
    pub fn open(dir: &Path, next_seq: u64, options: WalOptions) -> Result<Self, PersistError> {
        fs_err::create_dir_all(dir)?;
        let segment = Segment::create(dir, next_seq)?;
        let (tx, rx) = mpsc::channel();
        let failure = Failure::default();
        let dirty = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        counters.bytes.fetch_add(HEADER as u64, Ordering::Relaxed);
        let (writer_segment, direct) = if options.fsync == FsyncMode::Always {
            (WriterSegment::Owned(segment), None)
        } else {
            let sync = second_handle(&segment.file)?;
            (
                WriterSegment::SyncOnly(sync),
                Some(Direct {
                    segment,
                    frame: Vec::with_capacity(4096),
                }),
            )
        };
        let writer = Writer {
            dir: dir.to_path_buf(),
            segment: writer_segment,
            next_seq,
            options,
            failure: failure.clone(),
            dirty: dirty.clone(),
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("proxima-wal".to_string())
            .spawn(move || writer.run(rx))
            .map_err(PersistError::Io)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            options,
            head: Mutex::new(Head {
                next_seq,
                tx,
                direct,
            }),
            failure,
            dirty,
            writer: Mutex::new(Some(handle)),
            counters,
        })
    }

    /// Appends a record: writes it in `batch` and `never` modes, queues it for the writer in
    /// `always` mode. Returns its sequence number and the ticket to wait on.
    pub fn append(&self, payload: Vec<u8>) -> (u64, Ticket) {
        if let Some(e) = self.failure.get() {
            return (0, Ticket::failed(e.clone()));
        }
        let mut head = self.head.lock();
        let seq = head.next_seq;
        let Head { tx, direct, .. } = &mut *head;
        let Some(direct) = direct else {
            let (ack, ticket) = Ticket::pending();
            if tx
                .send(Command::Append {
                    seq,
                    body: payload,
                    ack,
                })
                .is_ok()
            {
                head.next_seq += 1;
            }
            return (seq, ticket);
        };
        match self.write_direct(direct, tx, seq, &payload) {
            Ok(()) => {
                head.next_seq += 1;
                (seq, Ticket::done())
            }
            Err(e) => (seq, Ticket::failed(self.failure.record(e))),
        }
    }

    /// Writes one record to the segment (direct modes), rotating when the segment is full.
    fn write_direct(
        &self,
        direct: &mut Direct,
        tx: &mpsc::Sender<Command>,
        seq: u64,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        direct.frame.clear();
        frame::push_parts(&mut direct.frame, &seq.to_le_bytes(), payload);
        direct.segment.file.write_all(&direct.frame)?;
        let written = direct.frame.len() as u64;
        direct.segment.bytes += written;
        self.counters.bytes.fetch_add(written, Ordering::Relaxed);
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        if self.options.fsync == FsyncMode::Batch && !self.dirty.swap(true, Ordering::AcqRel) {
            let _ = tx.send(Command::Dirty);
        }
        if direct.frame.capacity() > 1 << 20 {
            direct.frame = Vec::with_capacity(4096);
        }
        if direct.segment.bytes >= self.options.segment_bytes {
            self.rotate_direct(direct, tx, seq + 1)?;
        }
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts one whose first record is `next_seq`.
    fn rotate_direct(
        &self,
        direct: &mut Direct,
        tx: &mpsc::Sender<Command>,
        next_seq: u64,
    ) -> Result<(), PersistError> {
        sync_file(&direct.segment.file, &self.counters)?;
        direct.segment = Segment::create(&self.dir, next_seq)?;
        self.counters
            .bytes
            .fetch_add(HEADER as u64, Ordering::Relaxed);
        let _ = tx.send(Command::Segment(second_handle(&direct.segment.file)?));
        Ok(())
    }

    /// The sequence number of the last record queued (0 if none ever was).
    pub fn last_seq(&self) -> u64 {
        self.head.lock().next_seq - 1
    }

    /// Closes the current segment after everything queued so far; the next record starts a
    /// new one.
    pub fn rotate(&self) -> Ticket {
        let mut head = self.head.lock();
        let next_seq = head.next_seq;
        let Head { tx, direct, .. } = &mut *head;
        match direct {
            None => {
                let (ack, ticket) = Ticket::pending();
                let _ = tx.send(Command::Rotate { ack });
                ticket
            }
            Some(direct) => match self.failure.get() {
                Some(e) => Ticket::failed(e.clone()),
                None => match self.rotate_direct(direct, tx, next_seq) {
                    Ok(()) => Ticket::done(),
                    Err(e) => Ticket::failed(self.failure.record(e)),
                },
            },
        }
    }

    /// Completes once everything queued so far is fsynced.
    pub fn sync(&self) -> Ticket {
        self.command(|ack| Command::Sync { ack })
    }

    fn command(&self, make: impl FnOnce(Ack) -> Command) -> Ticket {
        let (ack, ticket) = Ticket::pending();
        let head = self.head.lock();
        let _ = head.tx.send(make(ack));
        ticket
    }

    /// The counters now, for metrics.
    pub fn stats(&self) -> WalStats {
        let c = &self.counters;
        WalStats {
            bytes: c.bytes.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            fsync_micros: c.fsync_micros.load(Ordering::Relaxed),
        }
    }

    /// Deletes every segment all of whose records have sequence numbers below `seq` (never
    /// the segment being written). Returns how many were deleted.
    pub fn remove_segments_before(&self, seq: u64) -> Result<usize, PersistError> {
        let segments = list_segments(&self.dir)?;
        let mut removed = 0;
        // A segment ends where the next one starts.
        for pair in segments.windows(2) {
            let (_, path) = &pair[0];
            let (next_first, _) = pair[1];
            if next_first <= seq {
                fs_err::remove_file(path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Flushes, fsyncs and stops the writer.
    pub fn close(&self) -> Result<(), PersistError> {
        let result = self.sync().wait();
        let handle = self.writer.lock().take();
        {
            // Dropping the sender (by replacing the channel) ends the writer's loop.
            let (tx, _) = mpsc::channel();
            self.head.lock().tx = tx;
        }
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        result
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if self.writer.lock().is_some() {
            let _ = self.close();
        }
    }
}

/// A second handle on a segment file, for the writer thread's fsyncs (errors name the path).
fn second_handle(file: &fs_err::File) -> Result<fs_err::File, PersistError> {
    Ok(fs_err::File::from_parts(
        file.file().try_clone()?,
        file.path(),
    ))
}
