//! The log's writer thread: in `always` mode it owns the segment and commits records in
//! groups (one `write` and one fsync for everything queued); in `batch` mode it fsyncs the
//! segment the appenders write, at most [`BATCH_FSYNC_DELAY`] after the first unsynced
//! write.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use super::segment::{Segment, sync_file};
use super::ticket::{Ack, Failure};
use super::{BATCH_FSYNC_DELAY, Counters, FsyncMode, HEADER, MAX_GROUP_BYTES, WalOptions};
use crate::persist::{PersistError, frame};

/// What appenders tell the writer thread.
pub(super) enum Command {
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
    Segment(fs_err::File),
}

/// The writer thread's view of the current segment.
pub(super) enum WriterSegment {
    /// `always` mode: the writer writes the segment.
    Owned(Segment),
    /// Direct modes: appends write the segment; the writer only fsyncs it, through its own
    /// handle on the same file.
    SyncOnly(fs_err::File),
}

/// The log's thread: group commit in `always` mode, the delayed fsync of `batch` mode.
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) segment: WriterSegment,
    pub(super) next_seq: u64,
    pub(super) options: WalOptions,
    pub(super) failure: Failure,
    pub(super) dirty: Arc<AtomicBool>,
    pub(super) counters: Arc<Counters>,
}

impl Writer {
    /// Serves commands until every sender is gone, then flushes and fsyncs what is left.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Command>) {
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
                        self.counters.records.fetch_add(1, Ordering::Relaxed);
                    }
                    Command::Rotate { ack } => {
                        self.flush(&mut buf, &mut acks, &mut unsynced_since);
                        self.guard(|w| w.rotate());
                        self.failure.reply(ack);
                    }
                    Command::Sync { ack } => {
                        self.flush(&mut buf, &mut acks, &mut unsynced_since);
                        self.guard(|w| w.fsync());
                        unsynced_since = None;
                        self.failure.reply(ack);
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
                w.counters
                    .bytes
                    .fetch_add(buf.len() as u64, Ordering::Relaxed);
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
            self.failure.reply(ack);
        }
    }

    /// Runs an I/O step unless the log has failed; a failure is recorded for good (a log
    /// that missed a write must not accept later ones). Returns whether it succeeded.
    fn guard(&mut self, step: impl FnOnce(&mut Self) -> Result<(), PersistError>) -> bool {
        if self.failure.get().is_some() {
            return false;
        }
        match step(self) {
            Ok(()) => true,
            Err(e) => {
                self.failure.record(e);
                false
            }
        }
    }

    fn fsync(&mut self) -> Result<(), PersistError> {
        // Cleared before the fsync: a write that lands after this sets it again and asks for
        // another fsync, so no acknowledged write is left unsynced.
        self.dirty.store(false, Ordering::Release);
        let file = match &self.segment {
            WriterSegment::Owned(segment) => &segment.file,
            WriterSegment::SyncOnly(file) => file,
        };
        sync_file(file, &self.counters)
    }

    fn rotate(&mut self) -> Result<(), PersistError> {
        if matches!(self.segment, WriterSegment::SyncOnly(_)) {
            // Direct modes rotate under the append lock (see `Wal::rotate`).
            return Ok(());
        }
        self.fsync()?;
        self.segment = WriterSegment::Owned(Segment::create(&self.dir, self.next_seq)?);
        self.counters
            .bytes
            .fetch_add(HEADER as u64, Ordering::Relaxed);
        Ok(())
    }
}
