//! Where POI imports run: a thread pool of their own and a bound on how many run at once,
//! in all (`--max-imports`) and per key (one), so that however slowly clients send their
//! dumps, imports never take the threads that fences, snapshots, expiry and the other
//! requests' blocking work need. An import past either bound is refused at once with a 429
//! and `Retry-After`, not queued. A body that trickles is cut off by the stream's idle
//! timeout and minimum rate ([`super::body::limited_stream`]).
//!
//! The pool reads and parses each import (its reader blocks on the body) and applies it;
//! the parallel parts of both (OSM blob decoding, tree building) run on the pool's own
//! threads too, so an import's CPU is bounded by the pool's size.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::problem::ApiError;
use super::quota::{Quota, QuotaSlot};

/// The imports' pool and bounds.
pub struct Imports {
    pool: rayon::ThreadPool,
    all: Arc<Semaphore>,
    per_owner: Arc<Quota<Arc<str>>>,
    max: usize,
    /// Track imports' running totals.
    pub tracks: TrackImportProgress,
}

/// The imports' running totals for tracks, for `/v1/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct TrackImportProgress {
    /// Imports running now.
    pub running: std::sync::atomic::AtomicUsize,
    /// Points stored by track imports since the server started.
    pub points: std::sync::atomic::AtomicU64,
}

/// One import's place, given back when dropped.
pub struct ImportSlot {
    _all: OwnedSemaphorePermit,
    _owner: QuotaSlot<Arc<str>>,
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imports").field("max", &self.max).finish()
    }
}

impl Imports {
    /// A pool of `max` threads for at most `max` imports at once, one per owner.
    pub fn new(max: usize) -> std::io::Result<Self> {
        let max = max.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(max)
            .thread_name(|i| format!("proxima-import-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            pool,
            all: Arc::new(Semaphore::new(max)),
            per_owner: Arc::new(Quota::new(1)),
            max,
            tracks: Default::default(),
        })
    }

    /// A place for one more import of `owner`'s, or the 429 that says why not.
    pub fn take(&self, owner: &Arc<str>) -> Result<ImportSlot, ApiError> {
        let owner_slot = self.per_owner.take(owner.clone()).ok_or_else(|| {
            ApiError::rate_limited(
                "this key already has an import running; send the next when it is done",
            )
        })?;
        let all = self.all.clone().try_acquire_owned().map_err(|_| {
            ApiError::rate_limited(format!(
                "the server is running {} imports, its limit (--max-imports); retry shortly",
                self.max
            ))
        })?;
        Ok(ImportSlot {
            _all: all,
            _owner: owner_slot,
        })
    }

    /// Runs `work` on the imports' pool and waits for it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(outcome);
        });
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ApiError::internal_message("an import panicked")),
            Err(e) => Err(ApiError::internal("the import pool dropped an import", &e)),
        }
    }
}
