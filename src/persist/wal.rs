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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{PersistError, frame};

/// Magic bytes opening every segment.
pub const MAGIC: &[u8; 8] = b"PRXMWAL\0";
/// The segment format this build writes (and the newest it reads).
pub const VERSION: u32 = 1;
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

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Bytes written to segments (frames and headers).
    pub bytes: AtomicU64,
    /// Records appended.
    pub records: AtomicU64,
    /// fsync calls.
    pub fsyncs: AtomicU64,
    /// Total time spent in fsync, microseconds.
    pub fsync_micros: AtomicU64,
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Command {
    /// `always` mode: write this record (the writer frames it).
    Append { seq: u64, body: Vec<u8>, ack: Ack },
    /// Close the current segment after everything before this; the next record starts a new
    /// one.
    Rotate { ack: Ack },
    /// fsync everything written or queued before this.
    Sync { ack: Ack },
    /// `batch` mode: bytes were written since the last fsync; fsync within 10 ms.
    Dirty,
    /// Direct modes: appends moved to a new segment; fsync this file from now on.
    Segment(std::fs::File),
}

/// Completes when a record (or a command) is as durable as the fsync mode promises.
#[derive(Debug)]
#[must_use = "a write is acknowledged only once its ticket completes"]
pub struct Ticket(TicketState);

#[derive(Debug)]
enum TicketState {
    Done,
    Failed(String),
    Pending(oneshot::Receiver<Result<(), String>>),
}

impl Ticket {
    /// A ticket that is already complete (no log, or a record already written).
    pub fn done() -> Self {
        Self(TicketState::Done)
    }

    /// Waits, blocking the thread. Not for async tasks: use [`Ticket::wait_async`].
    pub fn wait(self) -> Result<(), PersistError> {
        match self.0 {
            TicketState::Done => Ok(()),
            TicketState::Failed(e) => Err(PersistError::Failed(e)),
            TicketState::Pending(rx) => flatten(rx.blocking_recv()),
        }
    }

    /// Waits without blocking the thread.
    pub async fn wait_async(self) -> Result<(), PersistError> {
        match self.0 {
            TicketState::Done => Ok(()),
            TicketState::Failed(e) => Err(PersistError::Failed(e)),
            TicketState::Pending(rx) => flatten(rx.await),
        }
    }
}

fn flatten(r: Result<Result<(), String>, oneshot::error::RecvError>) -> Result<(), PersistError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PersistError::Failed(e)),
        Err(_) => Err(PersistError::Failed("the log writer stopped".to_string())),
    }
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
    failed: Arc<OnceLock<String>>,
    /// `batch` mode: set by the first write after an fsync, cleared by the writer thread
    /// just before it fsyncs.
    dirty: Arc<AtomicBool>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<WalStats>,
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
        let failed = Arc::new(OnceLock::new());
        let dirty = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WalStats::default());
        stats.bytes.fetch_add(HEADER as u64, Ordering::Relaxed);
        let (writer_segment, direct) = if options.fsync == FsyncMode::Always {
            (WriterSegment::Owned(segment), None)
        } else {
            let sync = segment.file.file().try_clone()?;
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
            failed: failed.clone(),
            dirty: dirty.clone(),
            stats: stats.clone(),
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
            failed,
            dirty,
            writer: Mutex::new(Some(handle)),
            stats,
        })
    }

    /// Appends a record: writes it in `batch` and `never` modes, queues it for the writer in
    /// `always` mode. Returns its sequence number and the ticket to wait on.
    pub fn append(&self, payload: Vec<u8>) -> (u64, Ticket) {
        if let Some(e) = self.failed.get() {
            return (0, Ticket(TicketState::Failed(e.clone())));
        }
        let mut head = self.head.lock();
        let seq = head.next_seq;
        let Head { tx, direct, .. } = &mut *head;
        let Some(direct) = direct else {
            let (ack, rx) = oneshot::channel();
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
            return (seq, Ticket(TicketState::Pending(rx)));
        };
        match self.write_direct(direct, tx, seq, &payload) {
            Ok(()) => {
                head.next_seq += 1;
                (seq, Ticket::done())
            }
            Err(e) => (seq, self.fail(e)),
        }
    }

    /// Records a direct write's failure for good (a log that missed a write must not accept
    /// later ones) and answers with the first failure.
    fn fail(&self, e: PersistError) -> Ticket {
        tracing::error!(error = %e, "write-ahead log failed; refusing further writes");
        let _ = self.failed.set(e.to_string());
        Ticket(TicketState::Failed(
            self.failed.get().cloned().unwrap_or_default(),
        ))
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
        self.stats.bytes.fetch_add(written, Ordering::Relaxed);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
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
        sync_file(&direct.segment.file, &self.stats)?;
        direct.segment = Segment::create(&self.dir, next_seq)?;
        self.stats.bytes.fetch_add(HEADER as u64, Ordering::Relaxed);
        let _ = tx.send(Command::Segment(direct.segment.file.file().try_clone()?));
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
                let (ack, rx) = oneshot::channel();
                let _ = tx.send(Command::Rotate { ack });
                Ticket(TicketState::Pending(rx))
            }
            Some(_) if self.failed.get().is_some() => Ticket(TicketState::Failed(
                self.failed.get().cloned().unwrap_or_default(),
            )),
            Some(direct) => match self.rotate_direct(direct, tx, next_seq) {
                Ok(()) => Ticket::done(),
                Err(e) => self.fail(e),
            },
        }
    }

    /// Completes once everything queued so far is fsynced.
    pub fn sync(&self) -> Ticket {
        self.command(|ack| Command::Sync { ack })
    }

    fn command(&self, make: impl FnOnce(Ack) -> Command) -> Ticket {
        let (ack, rx) = oneshot::channel();
        let head = self.head.lock();
        let _ = head.tx.send(make(ack));
        Ticket(TicketState::Pending(rx))
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &WalStats {
        &self.stats
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

/// The segment files in `dir`, by first sequence number.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    let mut segments = Vec::new();
    if !dir.exists() {
        return Ok(segments);
    }
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// What replaying the log found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The last sequence number in the log (or `after` if none is newer).
    pub last_seq: u64,
    /// Records passed to the callback.
    pub records: u64,
    /// Bytes of a torn last record cut off the end of the log.
    pub torn_bytes: u64,
}

/// Replays every record with a sequence number above `after`, in order. A torn last record
/// (a crash mid-write) is cut off the file and counted in `torn_bytes`; damage anywhere else
/// is an error naming the file and the offset. `apply` errors stop the replay.
pub fn replay(
    dir: &Path,
    after: u64,
    mut apply: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<Replayed, PersistError> {
    let segments = list_segments(dir)?;
    let mut out = Replayed {
        last_seq: after,
        ..Replayed::default()
    };
    let mut expected: Option<u64> = None;
    if let Some((first, path)) = segments.first()
        && *first > after + 1
    {
        return Err(PersistError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: format!(
                "the log starts at record {first}, but records from {} are needed",
                after + 1
            ),
        });
    }
    for (i, (first, path)) in segments.iter().enumerate() {
        let last_segment = i + 1 == segments.len();
        let bytes = fs_err::read(path)?;
        let corrupt = |offset: usize, reason: String| PersistError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            if last_segment
                && bytes.len() < HEADER
                && MAGIC.starts_with(&bytes[..bytes.len().min(8)])
            {
                // Crashed while creating the segment: nothing in it was acknowledged.
                out.torn_bytes += bytes.len() as u64;
                fs_err::remove_file(path)?;
                break;
            }
            return Err(corrupt(
                0,
                "not a Proxima log segment (bad magic)".to_string(),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > VERSION {
            return Err(PersistError::NewerVersion {
                path: path.clone(),
                found: version,
                supported: VERSION,
            });
        }
        let mut offset = HEADER;
        loop {
            let problem = match frame::next(&bytes, offset) {
                frame::Next::End => break,
                frame::Next::Frame(body, next) if body.len() >= 8 => {
                    let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
                    if expected.is_some_and(|e| seq != e) || (expected.is_none() && seq != *first) {
                        return Err(corrupt(offset, format!("record {seq} is out of sequence")));
                    }
                    expected = Some(seq + 1);
                    if seq > after {
                        apply(seq, &body[8..])
                            .map_err(|e| corrupt(offset, format!("record {seq}: {e}")))?;
                        out.records += 1;
                        out.last_seq = seq;
                    }
                    offset = next;
                    continue;
                }
                frame::Next::Frame(..) => "record shorter than its sequence number".to_string(),
                frame::Next::Torn => "the file ends inside a record".to_string(),
                frame::Next::Damaged(reason) => reason,
            };
            if last_segment && is_torn_tail(&bytes, offset) {
                let dropped = (bytes.len() - offset) as u64;
                tracing::warn!(path = %path.display(), offset, dropped, "cutting off a torn last record ({problem})");
                let file = fs_err::OpenOptions::new().write(true).open(path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                out.torn_bytes += dropped;
                break;
            }
            return Err(corrupt(offset, problem));
        }
    }
    Ok(out)
}

/// Whether the bytes from `offset` to the end can be a record cut short by a crash: the frame
/// there claims to reach the end of the file or beyond, or all that is left is zeros (a file
/// system may extend a file before the data lands).
fn is_torn_tail(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    if rest.len() < frame::HEADER || rest.iter().all(|b| *b == 0) {
        return true;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    frame::HEADER + len >= rest.len()
}

struct Segment {
    file: fs_err::File,
    bytes: u64,
}

impl Segment {
    fn create(dir: &Path, first_seq: u64) -> Result<Self, PersistError> {
        let path = dir.join(format!("{first_seq:020}.wal"));
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        file.write_all(&header)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Self {
            file,
            bytes: HEADER as u64,
        })
    }
}

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// fsyncs a segment file and counts it.
fn sync_file(file: &fs_err::File, stats: &WalStats) -> Result<(), PersistError> {
    timed_fsync(stats, || file.sync_data())
}

/// Runs an fsync and counts it in `stats`.
fn timed_fsync(
    stats: &WalStats,
    sync: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), PersistError> {
    let started = Instant::now();
    sync()?;
    stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    stats
        .fsync_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(())
}

/// The writer thread's view of the current segment.
enum WriterSegment {
    /// `always` mode: the writer writes the segment.
    Owned(Segment),
    /// Direct modes: appends write the segment; the writer only fsyncs it, through its own
    /// handle on the same file.
    SyncOnly(std::fs::File),
}

struct Writer {
    dir: PathBuf,
    segment: WriterSegment,
    next_seq: u64,
    options: WalOptions,
    failed: Arc<OnceLock<String>>,
    dirty: Arc<AtomicBool>,
    stats: Arc<WalStats>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        let mut unsynced_since: Option<Instant> = None;
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut acks: Vec<Ack> = Vec::new();
        loop {
            let first = match unsynced_since {
                Some(since) => {
                    match rx.recv_timeout(BATCH_FSYNC_DELAY.saturating_sub(since.elapsed())) {
                        Ok(command) => Some(command),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(command) => Some(command),
                    Err(_) => break,
                },
            };
            let Some(first) = first else {
                self.guard(|w| w.fsync());
                unsynced_since = None;
                continue;
            };
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append { seq, body, ack } => {
                        frame::push_parts(&mut buf, &seq.to_le_bytes(), &body);
                        acks.push(ack);
                        self.next_seq = seq + 1;
                        self.stats.records.fetch_add(1, Ordering::Relaxed);
                    }
                    Command::Rotate { ack } => {
                        self.flush(&mut buf, &mut acks, &mut unsynced_since);
                        self.guard(|w| w.rotate());
                        self.reply(ack);
                    }
                    Command::Sync { ack } => {
                        self.flush(&mut buf, &mut acks, &mut unsynced_since);
                        self.guard(|w| w.fsync());
                        unsynced_since = None;
                        self.reply(ack);
                    }
                    Command::Dirty => {
                        unsynced_since.get_or_insert_with(Instant::now);
                    }
                    Command::Segment(file) => {
                        self.segment = WriterSegment::SyncOnly(file);
                    }
                }
                if buf.len() < MAX_GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.flush(&mut buf, &mut acks, &mut unsynced_since);
            if let WriterSegment::Owned(segment) = &self.segment
                && segment.bytes >= self.options.segment_bytes
            {
                self.guard(|w| w.rotate());
            }
        }
        self.flush(&mut buf, &mut acks, &mut unsynced_since);
        self.guard(|w| w.fsync());
    }

    /// Writes the group, fsyncs if the mode says so, and acknowledges it.
    fn flush(
        &mut self,
        buf: &mut Vec<u8>,
        acks: &mut Vec<Ack>,
        unsynced_since: &mut Option<Instant>,
    ) {
        if !buf.is_empty() {
            let written = self.guard(|w| {
                let WriterSegment::Owned(segment) = &mut w.segment else {
                    unreachable!("only `always` mode queues records");
                };
                segment.file.write_all(buf)?;
                segment.bytes += buf.len() as u64;
                w.stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                Ok(())
            });
            buf.clear();
            if written {
                match self.options.fsync {
                    FsyncMode::Always => {
                        self.guard(|w| w.fsync());
                    }
                    FsyncMode::Batch => {
                        unsynced_since.get_or_insert_with(Instant::now);
                    }
                    FsyncMode::Never => {}
                }
            }
        }
        for ack in acks.drain(..) {
            self.reply(ack);
        }
    }

    fn reply(&self, ack: Ack) {
        let _ = ack.send(match self.failed.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        });
    }

    /// Runs an I/O step unless the log has failed; a failure is recorded for good (a log
    /// that missed a write must not accept later ones). Returns whether it succeeded.
    fn guard(&mut self, step: impl FnOnce(&mut Self) -> Result<(), PersistError>) -> bool {
        if self.failed.get().is_some() {
            return false;
        }
        match step(self) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "write-ahead log failed; refusing further writes");
                let _ = self.failed.set(e.to_string());
                false
            }
        }
    }

    fn fsync(&mut self) -> Result<(), PersistError> {
        // Cleared before the fsync: a write that lands after this sets it again and asks for
        // another fsync, so no acknowledged write is left unsynced.
        self.dirty.store(false, Ordering::Release);
        match &self.segment {
            WriterSegment::Owned(segment) => sync_file(&segment.file, &self.stats),
            WriterSegment::SyncOnly(file) => timed_fsync(&self.stats, || file.sync_data()),
        }
    }

    fn rotate(&mut self) -> Result<(), PersistError> {
        if matches!(self.segment, WriterSegment::SyncOnly(_)) {
            // Direct modes rotate under the append lock (see `Wal::rotate`).
            return Ok(());
        }
        self.fsync()?;
        self.segment = WriterSegment::Owned(Segment::create(&self.dir, self.next_seq)?);
        self.stats.bytes.fetch_add(HEADER as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
}
