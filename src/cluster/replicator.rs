//! The writing side of a cluster node: publishes each change to the stream and waits until
//! JetStream acknowledges it and this node has applied it, then hands back the outcome that
//! the apply reported.
//!
//! A writer registers its message id *before* publishing, so that the follower, which may
//! read the change back before the acknowledgement arrives, always finds the writer
//! waiting. A writer that gives up (its request dropped or timed out) unregisters; the
//! change, if stored, is still applied by every node.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use super::{ClusterConfig, ClusterError};
use crate::engine::{Appended, ChangeLog, EngineError, Outcome};

tokio::task_local! {
    /// The stream sequence of the last change the current request wrote, for its
    /// `x-proxima-seq` header (0: none).
    pub static WRITE_SEQ: Cell<u64>;
    /// The current request's idempotency key (digested with its caller): its changes are
    /// named after it in the stream.
    pub static MESSAGE_KEY: MessageKey;
}

/// What names an idempotent request's changes in the stream: its key's digest, and how
/// many of its changes were published (an import in parts publishes several).
#[derive(Debug)]
pub struct MessageKey {
    digest: [u8; 32],
    parts: Cell<u32>,
}

impl MessageKey {
    /// The name of the changes of the request whose key (with its caller) digests so.
    pub fn new(digest: [u8; 32]) -> Self {
        Self {
            digest,
            parts: Cell::new(0),
        }
    }

    /// The `Nats-Msg-Id` of this request's next change.
    fn next_id(&self) -> String {
        let part = self.parts.get();
        self.parts.set(part + 1);
        let hex: String = self.digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("idem-{hex}-{part}")
    }
}

/// What the follower hands a waiting writer: the change's sequence and its apply's outcome.
type Applied = (u64, Result<Outcome, EngineError>);

/// The most writes one node keeps waiting for the stream at once.
const MAX_PENDING: usize = 65_536;

/// Publishes changes and tracks how far this node has applied the stream.
pub struct Replicator {
    jetstream: jetstream::Context,
    subject: String,
    max_wait: Duration,
    max_lag: Duration,
    /// The NATS server's largest message (1 MiB by default until the server says).
    max_payload: AtomicUsize,
    waiting: Mutex<HashMap<String, oneshot::Sender<Applied>>>,
    applied: watch::Sender<u64>,
    /// The last stream sequence known to exist (from stream info or a message).
    stream_last: AtomicU64,
    /// When this node last had applied everything the stream held.
    caught_up_at: Mutex<Option<Instant>>,
    next_id: AtomicU64,
    node: String,
    /// Why this node stopped applying the stream, if it did.
    broken: Mutex<Option<String>>,
    /// Fence events this node published to JetStream (`--cluster-events`).
    exported: AtomicU64,
    /// Whether this node can write now: when the stream last answered it (its info, or a
    /// publish's acknowledgement), and the last write it could not make since.
    writes: Mutex<WriteHealth>,
    /// The answers to writes with an `Idempotency-Key`, kept for every node.
    answers: std::sync::OnceLock<async_nats::jetstream::kv::Store>,
}

/// What this node knows of whether it can write.
#[derive(Debug, Default)]
struct WriteHealth {
    answered: Option<Instant>,
    failed: Option<(Instant, String)>,
}

/// How long the stream may go without answering this node before it counts as unable to
/// write (the lag watch asks twice a second).
const UNANSWERED: Duration = Duration::from_millis(1_500);

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("subject", &self.subject)
            .field("applied", &self.applied_seq())
            .finish_non_exhaustive()
    }
}

impl Replicator {
    /// A replicator publishing on `config`'s log subject through `jetstream`, with the
    /// stream applied up to `applied` already.
    pub fn new(
        jetstream: jetstream::Context,
        config: &ClusterConfig,
        max_payload: usize,
        applied: u64,
    ) -> Self {
        let mut node = [0u8; 8];
        getrandom::fill(&mut node).expect("the OS has randomness");
        Self {
            jetstream,
            subject: config.log_subject(),
            max_wait: config.max_wait,
            max_lag: config.max_lag,
            max_payload: AtomicUsize::new(max_payload),
            waiting: Mutex::new(HashMap::new()),
            applied: watch::channel(applied).0,
            stream_last: AtomicU64::new(0),
            caught_up_at: Mutex::new(None),
            next_id: AtomicU64::new(1),
            node: node.iter().map(|b| format!("{b:02x}")).collect(),
            broken: Mutex::new(None),
            exported: AtomicU64::new(0),
            writes: Mutex::new(WriteHealth::default()),
            answers: std::sync::OnceLock::new(),
        }
    }

    /// How long a write or a read waits for this node before a 503 (`--max-wait`).
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// This node's id in the cluster (random per process).
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Starts counting from `seq`, what the state loaded at start covers.
    pub(crate) fn start_from(&self, seq: u64) {
        self.applied.send_replace(seq);
        self.stream_last.fetch_max(seq, Ordering::Relaxed);
    }

    /// Counts fence events published to JetStream.
    pub(crate) fn count_exported(&self, events: usize) {
        self.exported.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Fence events this node published to JetStream (`--cluster-events`).
    pub fn exported_events(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// The last stream sequence this node has applied.
    pub fn applied_seq(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Records the server's largest message, once connected.
    pub(crate) fn set_max_payload(&self, bytes: usize) {
        if bytes > 0 {
            self.max_payload.store(bytes, Ordering::Relaxed);
        }
    }

    /// The largest stream record this node publishes: the server's largest message, less
    /// room for the subject and headers.
    pub fn max_record_bytes(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed).saturating_sub(256)
    }

    /// Registers a change to publish; [`Pending::applied`] publishes it and waits.
    pub(crate) fn submit(self: &Arc<Self>, record: Vec<u8>) -> Result<Pending, ClusterError> {
        // The headers and subject take a few dozen bytes of the message's allowance.
        if record.len() > self.max_record_bytes() {
            return Err(ClusterError::TooLarge {
                size: record.len(),
                max: self.max_payload.load(Ordering::Relaxed),
            });
        }
        // A write sent with an Idempotency-Key is named after it (and its part, for an
        // import in parts), so that a retry on any node is stored once by JetStream.
        let id = MESSAGE_KEY
            .try_with(MessageKey::next_id)
            .unwrap_or_else(|_| {
                format!(
                    "{}-{}",
                    self.node,
                    self.next_id.fetch_add(1, Ordering::Relaxed)
                )
            });
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = self.waiting.lock();
            if waiting.len() >= MAX_PENDING {
                return Err(ClusterError::Busy(MAX_PENDING));
            }
            waiting.insert(id.clone(), tx);
        }
        Ok(Pending {
            replicator: self.clone(),
            id,
            record: Bytes::from(record),
            rx: Some(rx),
        })
    }

    /// Called by the follower once it has applied the change with message id `id` (if
    /// any) at `seq`: hands the outcome to its writer, if one is waiting here.
    pub(crate) fn applied(
        &self,
        id: Option<&str>,
        seq: u64,
        outcome: Result<Outcome, EngineError>,
    ) {
        self.applied.send_replace(seq);
        self.stream_last.fetch_max(seq, Ordering::Relaxed);
        if let Some(tx) = id.and_then(|id| self.waiting.lock().remove(id)) {
            let _ = tx.send((seq, outcome));
        }
        if seq >= self.stream_last.load(Ordering::Relaxed) {
            *self.caught_up_at.lock() = Some(Instant::now());
        }
    }

    /// Whether the stream is known to hold changes this node has not applied.
    pub(crate) fn is_behind(&self) -> bool {
        self.stream_last.load(Ordering::Relaxed) > self.applied_seq()
    }

    /// Marks this node as no longer applying the stream, for good: `/readyz` says why.
    pub(crate) fn broken(&self, why: String) {
        *self.broken.lock() = Some(why);
    }

    /// Keeps answers to idempotent writes in `store` from now on.
    pub(crate) fn keep_answers_in(&self, store: async_nats::jetstream::kv::Store) {
        let _ = self.answers.set(store);
    }

    /// The answer kept under `key` by any node, if any.
    pub async fn kept_answer(&self, key: &str) -> Result<Option<Bytes>, ClusterError> {
        let Some(store) = self.answers.get() else {
            return Ok(None);
        };
        tokio::time::timeout(self.max_wait, store.get(key))
            .await
            .map_err(|_| {
                ClusterError::Unavailable(self.max_wait, "no answer from the answers bucket".into())
            })?
            .map_err(|e| ClusterError::Unavailable(self.max_wait, e.to_string()))
    }

    /// Keeps `answer` under `key` for every node (best effort: a retry that finds none is
    /// answered 409 until it does, or applied as new once the stream has forgotten it).
    pub async fn keep_answer(&self, key: &str, answer: Bytes) {
        if let Some(store) = self.answers.get()
            && let Err(e) = store.put(key, answer).await
        {
            tracing::warn!(error = %e, "cluster: an idempotent write's answer was not kept");
        }
    }

    /// The stream answered this node (its info, or a publish's acknowledgement).
    pub(crate) fn stream_answered(&self) {
        let mut writes = self.writes.lock();
        writes.answered = Some(Instant::now());
        writes.failed = None;
    }

    /// A write could not be made.
    fn write_failed(&self, why: &str) {
        self.writes.lock().failed = Some((Instant::now(), why.to_string()));
    }

    /// Whether this node can write now; if not, why.
    fn writable(&self) -> Result<(), String> {
        let writes = self.writes.lock();
        if let Some((_, why)) = &writes.failed {
            return Err(format!("cluster: writes fail ({why})"));
        }
        match writes.answered {
            Some(at) if at.elapsed() <= UNANSWERED => Ok(()),
            Some(at) => Err(format!(
                "cluster: the stream has not answered this node for {:.1} s; writes would fail",
                at.elapsed().as_secs_f64()
            )),
            None => Err("cluster: the stream has not answered this node yet".to_string()),
        }
    }

    /// Records the stream's last sequence, as stream info reported it.
    pub(crate) fn saw_stream_at(&self, last: u64) {
        self.stream_last.fetch_max(last, Ordering::Relaxed);
        if self.applied_seq() >= last {
            *self.caught_up_at.lock() = Some(Instant::now());
        }
    }

    /// Whether this node was caught up with the stream within the last `max_lag`; if not,
    /// why, for `/readyz`.
    pub fn lag(&self) -> Result<(), String> {
        if let Some(why) = self.broken.lock().clone() {
            return Err(format!("cluster: {why}"));
        }
        // A node that cannot write is not one to send writes to.
        self.writable()?;
        let applied = self.applied_seq();
        let last = self.stream_last.load(Ordering::Relaxed);
        match *self.caught_up_at.lock() {
            Some(at) if at.elapsed() <= self.max_lag => Ok(()),
            Some(at) => Err(format!(
                "cluster: this node last caught up with the stream {:.1} s ago (applied {applied}, the stream at {last} or more), more than --max-lag {:?}",
                at.elapsed().as_secs_f64(),
                self.max_lag
            )),
            None => Err(format!(
                "cluster: this node has not caught up with the stream yet (applied {applied}, the stream at {last} or more)"
            )),
        }
    }

    /// Waits until this node has applied `seq`, at most `--max-wait`.
    pub async fn wait_for(&self, seq: u64) -> Result<(), ClusterError> {
        let started = Instant::now();
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout(self.max_wait, applied.wait_for(|&a| a >= seq)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ClusterError::Behind {
                wanted: seq,
                applied: self.applied_seq(),
                waited: started.elapsed(),
            }),
        }
    }
}

/// A change registered with the replicator, not yet published.
pub struct Pending {
    replicator: Arc<Replicator>,
    id: String,
    record: Bytes,
    rx: Option<oneshot::Receiver<Applied>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("id", &self.id).finish()
    }
}

impl Pending {
    /// Publishes the change (retrying with the same message id, which JetStream stores
    /// once), waits for the acknowledgement, then for this node to apply it; gives the
    /// apply's outcome, and notes the sequence for the answer's `x-proxima-seq`.
    pub(crate) async fn applied(mut self) -> Result<Outcome, EngineError> {
        let max_wait = self.replicator.max_wait;
        let deadline = tokio::time::Instant::now() + max_wait;
        let (seq, duplicate) = self.publish(deadline).await?;
        // The stream holds it: the applier reads on to it even while it has no consumer.
        self.replicator.saw_stream_at(seq);
        if duplicate && self.replicator.applied_seq() >= seq {
            // Stored already (a retried idempotent write) and applied before this attempt
            // was waiting for it: its outcome went to the first attempt.
            return Err(ClusterError::AlreadyApplied(seq).into());
        }
        let rx = self.rx.take().expect("awaited once");
        let applied = tokio::time::timeout_at(deadline, rx).await;
        let Ok(Ok((applied_seq, outcome))) = applied else {
            return Err(ClusterError::NotApplied(seq, max_wait).into());
        };
        debug_assert_eq!(applied_seq, seq);
        let _ = WRITE_SEQ.try_with(|s| s.set(s.get().max(seq)));
        outcome
    }

    /// Publishes the change until it is acknowledged: its sequence, and whether the stream
    /// had it already (the same message id, within its duplicate window).
    async fn publish(&self, deadline: tokio::time::Instant) -> Result<(u64, bool), ClusterError> {
        let max_wait = self.replicator.max_wait;
        let mut last_error = String::from("no attempt finished");
        let mut pause = Duration::from_millis(50);
        // Retries come at most every 200 ms: back within that of the stream answering.
        loop {
            let attempt = async {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(self.record.clone())
                    .message_id(&self.id);
                let ack = self
                    .replicator
                    .jetstream
                    .send_publish(self.replicator.subject.clone(), publish)
                    .await
                    .map_err(|e| e.to_string())?;
                ack.await
                    .map(|ack| (ack.sequence, ack.duplicate))
                    .map_err(|e| e.to_string())
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(acked)) => {
                    self.replicator.stream_answered();
                    return Ok(acked);
                }
                Ok(Err(e)) => last_error = e,
                Err(_) => {
                    self.replicator.write_failed(&last_error);
                    return Err(ClusterError::Unavailable(max_wait, last_error));
                }
            }
            if tokio::time::Instant::now() + pause >= deadline {
                self.replicator.write_failed(&last_error);
                return Err(ClusterError::Unavailable(max_wait, last_error));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// The stream as the engine's [`ChangeLog`]: a change is published, and applied when this
/// node reads it back.
pub struct StreamLog(pub Arc<Replicator>);

impl ChangeLog for StreamLog {
    fn append(&self, record: Vec<u8>) -> Result<Appended, EngineError> {
        let pending = self.0.submit(record)?;
        Ok(Appended::Shared(Box::pin(pending.applied())))
    }

    fn max_record_bytes(&self) -> usize {
        self.0.max_record_bytes()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.replicator.waiting.lock().remove(&self.id);
    }
}
