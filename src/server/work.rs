//! Where a request's long work runs, so that no caller can take the async workers (which
//! answer everyone, `/healthz` included) or every blocking thread:
//!
//! - **Areas and route reads**: validating a polygon, judging a new fence, and reading a
//!   trip's route, figures or stays are work in proportion to the area's or the route's
//!   size. They run on tokio's blocking pool, at most [`heavy_slots`] at once server-wide
//!   (half the cores, at least one), so that however many clients send large areas,
//!   cores are left for everything else; a request waits for a slot for at most
//!   [`HEAVY_QUEUE_WAIT`], then gets a 503. Each holder (a key or traveller token, a
//!   share link, or on an open server a client address) has at most
//!   [`heavy_per_holder`] of them running or queued for a slot at once, its others
//!   waiting behind its own: the slots' queue holds a few of each holder's, so that one
//!   caller's many requests are taken in turn with everyone else's, not all before them.
//! - **Imports** have a pool of their own ([`crate::server::imports`]).
//! - **Trip streams' reads** of new points run on tokio's blocking pool, at most
//!   [`heavy_slots`] at once server-wide, in slots of their own ([`for_a_stream`]), and
//!   half of those per caller ([`StreamTurn`]); the others wait their turn, in order. A
//!   stream reads at most every quarter second, but each read used to take a blocking
//!   thread of its own: 256 follower streams woken by their trips' writes kept 256
//!   threads, whose switching and fresh heaps cost everyone (`scripts/attacks.sh 3
//!   followers 10`: /healthz p99 11.1 ms during the attack, 275 threads in the server;
//!   4.8 ms with the slots and turns).
//! - **Live maps**: opening one (a scan of its box), building its frames and closing it are
//!   work in proportion to the travellers it shows. They run on the maps' own small pool of
//!   lower-priority threads ([`crate::background`]), a quarter of the cores (at least one):
//!   a thousand whole-world maps get their frames later, not the writes slower.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::problem::ApiError;
use super::sse::StreamHolder;

/// How long a request waits for a slot for heavy work before it is answered 503.
pub const HEAVY_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Heavy work that may run at once: half the cores, at least one.
pub fn heavy_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

static HEAVY: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(heavy_slots()));

/// Whether a path's route may do heavy work ([`off_the_workers`]), which is counted by
/// who asks: its caller, or on an open server its address, must be known to the route.
pub fn is_heavy_work_path(path: &str) -> bool {
    path.starts_with("/v1/trips/")
        || path.starts_with("/v1/fences/")
        || path == "/v1/pois/within"
        || path == "/v1/travellers/within"
}

/// Heavy work one holder may have running or queued for the slots at once: half the
/// slots, at least one.
pub fn heavy_per_holder() -> usize {
    heavy_slots().div_ceil(2)
}

/// Each holder's share of the heavy-work slots, and how many of its requests use it.
static HEAVY_TURNS: LazyLock<Mutex<Turns>> = LazyLock::new(Default::default);

/// A holder's turn: how many of its requests or streams hold a place in it, and the
/// permits they share.
type Turns = HashMap<StreamHolder, (usize, Arc<Semaphore>)>;

/// A place in a holder's turn among some slots (its share of them: `permits`); given back
/// when dropped, and the turn forgotten with its last place.
#[derive(Debug)]
struct Turn {
    turns: &'static Mutex<Turns>,
    holder: StreamHolder,
    permits: Arc<Semaphore>,
}

impl Turn {
    /// A place in `holder`'s turn in `turns`, whose share is `share` permits.
    fn take(turns: &'static Mutex<Turns>, holder: StreamHolder, share: usize) -> Self {
        let permits = {
            let mut held = turns.lock();
            let (users, permits) = held
                .entry(holder.clone())
                .or_insert_with(|| (0, Arc::new(Semaphore::new(share))));
            *users += 1;
            permits.clone()
        };
        Self {
            turns,
            holder,
            permits,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = self.turns.lock();
        if let Some((users, _)) = turns.get_mut(&self.holder) {
            *users -= 1;
            if *users == 0 {
                turns.remove(&self.holder);
            }
        }
    }
}

/// Runs `work` for `holder` off the async workers, within the server's slots for heavy
/// work and the holder's share of them.
pub async fn off_the_workers<T: Send + 'static>(
    holder: &StreamHolder,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let turn = Turn::take(&HEAVY_TURNS, holder.clone(), heavy_per_holder());
    let closed = |e| ApiError::internal("the heavy-work slots are closed", &e);
    let permits = tokio::time::timeout(HEAVY_QUEUE_WAIT, async {
        let mine = turn.permits.clone().acquire_owned().await.map_err(closed)?;
        let slot = HEAVY.acquire().await.map_err(closed)?;
        Ok::<_, ApiError>((mine, slot))
    })
    .await
    .map_err(|_| {
        ApiError::busy(format!(
            "the server is busy with large areas or long routes; no slot came free within {HEAVY_QUEUE_WAIT:?}, retry"
        ))
    })??;
    // The slot and the turn go with the work, not with the request: a client that hangs
    // up leaves the work running to its end, and its slot taken till then (given back with
    // the request, they let one caller start heavy work without bound by hanging up).
    let done = tokio::task::spawn_blocking(move || {
        let done = work();
        drop(permits);
        drop(turn);
        done
    })
    .await
    .map_err(|e| ApiError::internal("heavy work panicked", &e));
    done?
}

static STREAM_READS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(heavy_slots()));

/// Each stream holder's turn among the streams' slots, by holder.
static STREAM_TURNS: LazyLock<Mutex<Turns>> = LazyLock::new(Default::default);

/// Reads one holder's streams may have in the streams' slots at once: half the slots, at
/// least one. Not one in all: every follower behind one proxy, or of one share link, is
/// one holder.
pub fn stream_reads_per_holder() -> usize {
    heavy_slots().div_ceil(2)
}

/// A stream's place in its holder's turn: a holder's streams read at most
/// [`stream_reads_per_holder`] at a time, so that the streams' slots are shared holder by
/// holder, not read by read. Without it, a caller with its 64 streams woken at once put 64
/// reads in the queue ahead of another caller's one; with it, a few (and a server's
/// callers with many keys put a few a key).
#[derive(Debug)]
pub struct StreamTurn(Turn);

impl StreamTurn {
    /// A place in `holder`'s turn, for one of its streams; given back when dropped.
    pub fn of(holder: StreamHolder) -> Self {
        Self(Turn::take(&STREAM_TURNS, holder, stream_reads_per_holder()))
    }
}

/// Runs a trip stream's `work` off the async workers, within the streams' slots, once it is
/// the turn of the stream's holder: it waits as long as it takes (a stream has no answer to
/// give up on; it only sends its next points later).
pub async fn for_a_stream<T: Send + 'static>(
    turn: &StreamTurn,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let closed = |e| ApiError::internal("the streams' slots are closed", &e);
    let mine = turn.0.permits.acquire().await.map_err(closed)?;
    let permit = STREAM_READS.acquire().await.map_err(closed)?;
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal("a stream's read panicked", &e));
    drop(permit);
    drop(mine);
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

    /// A request given up while its heavy work runs (its client gone) leaves the work its
    /// slot and turn until the work ends: they are not free for more work meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heavy_work_keeps_its_turn_after_its_request_is_gone() {
        let holder = StreamHolder::Owner("gone".into());
        let (started, running) = std::sync::mpsc::channel();
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let request = {
            let holder = holder.clone();
            tokio::spawn(async move {
                off_the_workers(&holder, move || {
                    started.send(()).expect("the test waits");
                    finished.recv().expect("the test says when");
                    Ok(())
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || running.recv().expect("started"))
            .await
            .expect("waited");
        request.abort();
        assert!(request.await.is_err(), "the request was given up");
        assert!(
            HEAVY_TURNS.lock().contains_key(&holder),
            "the work still holds its turn"
        );
        finish.send(()).expect("the work waits");
        for _ in 0..1_000 {
            if !HEAVY_TURNS.lock().contains_key(&holder) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the turn was not given back when the work ended");
    }

    /// One holder's many heavy requests, sent first, do not all run before another
    /// holder's one: that one runs once the first holder's share of the queue is taken,
    /// not after all of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holders_heavy_work_is_taken_in_turn_with_anothers() {
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let hog = StreamHolder::Owner("hog".into());
        let other = StreamHolder::Owner("other".into());
        let job = |name: &'static str, holder: StreamHolder| {
            let order = order.clone();
            tokio::spawn(async move {
                off_the_workers(&holder, move || {
                    order.lock().push(name);
                    std::thread::sleep(Duration::from_millis(50));
                    Ok(())
                })
                .await
            })
        };
        let mut jobs: Vec<_> = (0..8).map(|_| job("hog", hog.clone())).collect();
        // The hog's requests are all waiting, in its turn or in the slots' queue.
        while HEAVY_TURNS
            .lock()
            .get(&hog)
            .is_none_or(|(users, _)| *users < 8)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        jobs.push(job("other", other));
        for j in jobs {
            j.await.expect("ran").expect("done");
        }
        let order = order.lock().clone();
        let at = order.iter().position(|n| *n == "other").expect("ran");
        // Ahead of it: at most what was running and the hog's share of the queue.
        assert!(
            at <= heavy_slots() + heavy_per_holder(),
            "the other holder's request ran {at}th: {order:?}"
        );
        assert!(
            !HEAVY_TURNS.lock().contains_key(&hog),
            "every turn given back"
        );
    }

    /// However many streams read at once, at most [`heavy_slots`] reads run, each on a
    /// blocking thread; every read still gets its turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_reads_run_a_few_at_a_time_and_all_run() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..64).map(|i| {
            let (running, most) = (running.clone(), most.clone());
            // Each its own holder: the bound is the server's, not a holder's.
            let turn = StreamTurn::of(StreamHolder::Owner(format!("reader {i}").into()));
            tokio::spawn(async move {
                for_a_stream(&turn, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .await
            })
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

    /// A caller whose 32 streams all want to read does not put 32 reads ahead of another
    /// caller's one: the other's read waits for a few of the first caller's (two turns'
    /// worth at most), however many it queued first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_callers_many_streams_take_one_turn_at_a_time() {
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let many = (0..32).map(|_| StreamTurn::of(StreamHolder::Owner("many".into())));
        let many: Vec<Arc<StreamTurn>> = many.map(Arc::new).collect();
        let mut reads = Vec::new();
        for turn in &many {
            let (turn, order) = (turn.clone(), order.clone());
            reads.push(tokio::spawn(async move {
                for_a_stream(&turn, move || {
                    std::thread::sleep(Duration::from_millis(5));
                    order.lock().push("many");
                })
                .await
            }));
        }
        // Let every one of them queue first (a few of them run meanwhile: 5 ms each, one
        // at a time).
        tokio::time::sleep(Duration::from_millis(10)).await;
        let one = StreamTurn::of(StreamHolder::Owner("one".into()));
        let done_before = order.lock().len();
        assert!(done_before < 30, "the first caller's reads still queue");
        let order_one = order.clone();
        for_a_stream(&one, move || order_one.lock().push("one"))
            .await
            .expect("read");
        for read in reads {
            read.await.expect("joined").expect("read");
        }
        let order = order.lock();
        let at = order.iter().position(|who| *who == "one").expect("read");
        // Ahead of it: the first caller's reads running, and at most as many next ones,
        // which may have taken the caller's turns just before.
        assert!(
            at - done_before <= 2 * stream_reads_per_holder() + 1,
            "the other caller's read came after {} more of the first's",
            at - done_before
        );
        assert_eq!(order.len(), 33, "every read ran");
    }

    /// A holder's turn is forgotten when its last stream ends.
    #[test]
    fn a_holders_turn_goes_with_its_last_stream() {
        let holder = StreamHolder::Owner("turn test".into());
        let first = StreamTurn::of(holder.clone());
        let second = StreamTurn::of(holder.clone());
        assert!(
            Arc::ptr_eq(&first.0.permits, &second.0.permits),
            "one turn a holder"
        );
        drop(first);
        assert!(STREAM_TURNS.lock().contains_key(&holder));
        drop(second);
        assert!(!STREAM_TURNS.lock().contains_key(&holder));
    }
}
