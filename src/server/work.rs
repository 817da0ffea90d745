//! Where a request's long work runs, so that no caller can take the async workers (which
//! answer everyone, `/healthz` included) or every blocking thread:
//!
//! - **Areas**: validating a polygon and judging a new fence are work in proportion to the
//!   area's size. They run on tokio's blocking pool, at most [`heavy_slots`] at once
//!   server-wide (half the cores, at least one), so that however many clients send large
//!   areas, cores are left for everything else; a request waits for a slot for at most
//!   [`HEAVY_QUEUE_WAIT`], then gets a 503.
//! - **Imports** have a pool of their own ([`crate::server::imports`]).
//! - **Live maps**: opening one (a scan of its box), building its frames and closing it are
//!   work in proportion to the travellers it shows. They run on the maps' own small pool of
//!   lower-priority threads ([`crate::background`]), a quarter of the cores (at least one):
//!   a thousand whole-world maps get their frames later, not the writes slower.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::problem::ApiError;

/// How long a request waits for a slot for heavy work before it is answered 503.
pub const HEAVY_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Heavy work that may run at once: half the cores, at least one.
pub fn heavy_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

static HEAVY: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(heavy_slots()));

/// Runs `work` off the async workers, within the server's slots for heavy work.
pub async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = tokio::time::timeout(HEAVY_QUEUE_WAIT, HEAVY.acquire())
        .await
        .map_err(|_| {
            ApiError::busy(format!(
                "the server is busy with large areas; no slot came free within {HEAVY_QUEUE_WAIT:?}, retry"
            ))
        })?
        .map_err(|e| ApiError::internal("the heavy-work slots are closed", &e))?;
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal("heavy work panicked", &e));
    drop(permit);
    done?
}

/// The live maps' pool: a quarter of the cores (at least one), niced. `None` if its threads
/// could not be started (maps' work then runs on tokio's blocking pool).
static MAPS: LazyLock<Option<rayon::ThreadPool>> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(4));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("proxima-maps-{i}"))
        .start_handler(|_| crate::background::lower_this_thread())
        .build()
        .inspect_err(
            |e| tracing::error!(error = %e, "no live-map pool; maps work on the blocking pool"),
        )
        .ok()
});

/// Runs a live map's `work` on the maps' pool and waits for it.
pub async fn on_the_map_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    match &*MAPS {
        Some(pool) => {
            let (done, answer) = tokio::sync::oneshot::channel();
            pool.spawn(move || {
                // The waiting request may be gone: what `work` returns is then dropped here.
                let _ = done.send(work());
            });
            answer
                .await
                .map_err(|e| ApiError::internal("a live map's work panicked", &e))
        }
        None => tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::internal("a live map's work panicked", &e)),
    }
}

/// Drops `value` on the maps' pool (a live map closing: its members forgotten).
pub fn drop_on_the_map_pool<T: Send + 'static>(value: T) {
    match &*MAPS {
        Some(pool) => pool.spawn(move || drop(value)),
        None => drop(value),
    }
}
