//! Where a request's long work runs, so that no caller can take the async workers (which
//! answer everyone, `/healthz` included) or every blocking thread:
//!
//! - **Areas**: validating a polygon and judging a new fence are work in proportion to the
//!   area's size. They run on tokio's blocking pool, at most [`heavy_slots`] at once
//!   server-wide (half the cores, at least one), so that however many clients send large
//!   areas, cores are left for everything else; a request waits for a slot for at most
//!   [`HEAVY_QUEUE_WAIT`], then gets a 503.
//! - **Imports** have a pool of their own ([`crate::server::imports`]).
//! - **Trip streams' reads** of new points run on tokio's blocking pool, at most
//!   [`heavy_slots`] at once server-wide, in slots of their own ([`for_a_stream`]); the
//!   others wait their turn, in order. Each stream read at most every quarter second, but
//!   every one of them on a blocking thread of its own: 256 follower streams woken by
//!   their trips' writes kept 256 threads, whose switching and fresh heaps cost everyone
//!   (`scripts/attacks.sh 3 followers 10`: /healthz p99 11.1 ms during the attack, 275
//!   threads in the server).
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

static STREAM_READS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(heavy_slots()));

/// Runs a trip stream's `work` off the async workers, within the streams' slots: it waits
/// for a slot as long as it takes (a stream has no answer to give up on; it only sends its
/// next points later).
pub async fn for_a_stream<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let permit = STREAM_READS
        .acquire()
        .await
        .map_err(|e| ApiError::internal("the streams' slots are closed", &e))?;
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal("a stream's read panicked", &e));
    drop(permit);
    done
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// However many streams read at once, at most [`heavy_slots`] reads run, each on a
    /// blocking thread; every read still gets its turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_reads_run_a_few_at_a_time_and_all_run() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..64).map(|i| {
            let (running, most) = (running.clone(), most.clone());
            tokio::spawn(for_a_stream(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            }))
        });
        let mut done = Vec::new();
        for read in reads.collect::<Vec<_>>() {
            done.push(read.await.expect("joined").expect("read"));
        }
        assert_eq!(done, (0..64).collect::<Vec<_>>());
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=heavy_slots()).contains(&most),
            "{most} reads at once, slots {}",
            heavy_slots()
        );
    }
}
