//! Narrowed trips: a trip's narrowing recorded on the write path ([`Inner::narrow`]), and
//! its trim of the stored points, later, off it ([`Inner::trim`]); and what `storing`
//! guards while a trim rewrites a route ([`Storing`]).
//!
//! A trim that must cut settled points rewrites the trip's route in steps
//! ([`crate::routes::Rewrite`]), giving `storing` up between them: other trips' readers
//! and the route thread's pieces wait for one step, not for the route. Until the last
//! step, the trip is in [`Storing::rewriting`], and nothing that would read or change its
//! chunks goes on: its readers and its other trims wait for it ([`Inner::wait_for_rewrite_of`]),
//! and a settling, a compaction and a durable mark wait for every rewrite
//! ([`Inner::wait_for_rewrites`]), so that no reader sees part of a route and a crash
//! finds the route as it was before its narrowing, which the log replays.
//!
//! Measured with `scripts/narrow-stall.sh`: an owner narrowing a trip of a million points
//! one point at a time, back to back, held another trip's route reads 241 ms at p50 (the
//! whole rewrite, each time, under `storing`); in steps, see `docs/performance.md`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use super::Inner;
use crate::routes::{REWRITE_STEP, Rewrite, RouteStoreError};

/// What the `storing` lock guards, beside the order of the store's writes.
#[derive(Debug, Default)]
pub(super) struct Storing {
    /// Trips whose settled points are being rewritten in steps, `storing` given up
    /// between them.
    rewriting: HashSet<Box<str>>,
    /// Rewrites a failed step left part written, by trip: the next trim of the trip
    /// finishes them (their points kept are nowhere else).
    unfinished: HashMap<Box<str>, Rewrite>,
}

/// `storing`, held.
pub(super) type StoringGuard<'a> = MutexGuard<'a, Storing>;

/// A narrowing of a trip's window, waiting to be applied to its stored points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Narrowing {
    /// The first fresh piece written after it: the trip's points in pieces numbered
    /// below hold points from before it, which it trims; later pieces hold none.
    before_piece: u64,
    from: i64,
    to: i64,
}

/// The window that all of `narrowings` leave (`None`: no narrowing).
fn window_of<'a>(narrowings: impl IntoIterator<Item = &'a Narrowing>) -> Option<(i64, i64)> {
    narrowings
        .into_iter()
        .map(|n| (n.from, n.to))
        .reduce(|a, b| (a.0.max(b.0), a.1.min(b.1)))
}

/// The longest a rewrite waits between two steps for those who want `storing` (before it
/// queues for its next step with them): their settling of a trip takes a millisecond or
/// two, a part of the route thread's settling about 100 ms.
const MAX_GAP: Duration = Duration::from_millis(100);

/// How long the route thread leaves trims after one, as a multiple of the time it took:
/// the trims it runs of its own accord then take at most a fifth of its time. An owner
/// narrowing a long trip back to back otherwise had it rewrite the route again and again:
/// four callers narrowing trips of 500,000 points took the route thread from a fifth of a
/// core to most of one, and the victim's trip batches to 0.61–0.70 of their rate
/// (`proxima attack --attack narrowings`; see `docs/performance.md`); a pause a trip
/// left it at four fifths with four such trips. Those who need a trip trimmed do not wait
/// for the pause: its readers trim it (in their own share of the heavy work), and so do a
/// settling that reaches points written after one of its narrowings, and a snapshot.
pub(super) const TRIM_PAUSE: u32 = 4;

/// How long the route thread remembers that it trimmed a trip, to trim first those it has
/// not trimmed lately.
const TRIMMED_LATELY: Duration = Duration::from_secs(60);

/// The most trims [`TrimPacing`] remembers before it forgets all but the last second's.
const REMEMBERED_TRIMS: usize = 16_384;

/// The route thread's pacing of the trims it runs of its own accord.
#[derive(Debug, Default)]
pub(super) struct TrimPacing {
    /// No trim of its own accord before this.
    pub(super) until: Option<Instant>,
    /// When it trimmed each trip, within [`TRIMMED_LATELY`] or while the trip waits.
    last: HashMap<Box<str>, Instant>,
}

impl TrimPacing {
    /// Whether the pause after the last trim runs.
    pub(super) fn paused(&self) -> bool {
        !self.left().is_zero()
    }

    /// What is left of the pause after the last trim.
    pub(super) fn left(&self) -> Duration {
        self.until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }

    /// Forgets the trips trimmed longer ago than [`TRIMMED_LATELY`] that do not wait.
    pub(super) fn forget_lately(&mut self, waiting: &HashMap<Box<str>, Vec<Narrowing>>) {
        self.last
            .retain(|trip, at| at.elapsed() < TRIMMED_LATELY || waiting.contains_key(trip));
    }

    /// Records a trim of `trip` that ends now and pauses for `pause` (a pause under way
    /// that ends later stands).
    fn trimmed(&mut self, trip: Box<str>, pause: Duration) {
        let now = Instant::now();
        self.until = self.until.max(Some(now + pause));
        if self.last.len() >= REMEMBERED_TRIMS {
            // Past the bound (a settling trims in bulk): only the last second's trims,
            // and none if they are half the bound (a scan each trim past it otherwise).
            self.last
                .retain(|_, at| now.duration_since(*at) < Duration::from_secs(1));
            if self.last.len() >= REMEMBERED_TRIMS / 2 {
                self.last.clear();
            }
        }
        self.last.insert(trip, now);
    }

    /// `trips`, those trimmed longest ago first (those never trimmed before them).
    pub(super) fn longest_ago_first<'a>(
        &self,
        trips: impl Iterator<Item = &'a Box<str>>,
    ) -> Vec<Box<str>> {
        let mut trips: Vec<(Option<&Instant>, &Box<str>)> =
            trips.map(|trip| (self.last.get(trip), trip)).collect();
        trips.sort_unstable();
        trips.into_iter().map(|(_, trip)| trip.clone()).collect()
    }
}

/// The most narrowings of one trip that may wait for their trim. Narrowings with no piece
/// written between them are one (their windows intersected), a narrowing whose window
/// holds a later one's is dropped for it, and the route thread trims a trip with
/// [`MANY_NARROWINGS`] waiting at once, pause or not ([`Inner::trim_all_now`]); so reaching this
/// takes a trim held up while dozens of pieces are written; past it, a narrowing trims at
/// once, on the write path.
pub(super) const MAX_NARROWINGS: usize = 64;

/// Narrowings of one trip waiting past which the route thread trims it in its pause.
pub(super) const MANY_NARROWINGS: usize = MAX_NARROWINGS / 2;

impl Inner {
    /// Takes `storing`, counted as wanted while it waits, so that a rewrite between two
    /// steps lets it in first ([`Inner::let_in`]).
    pub(super) fn lock_storing(&self) -> StoringGuard<'_> {
        self.storing_wanted.fetch_add(1, Ordering::SeqCst);
        let storing = self.storing.lock();
        self.storing_wanted.fetch_sub(1, Ordering::SeqCst);
        storing
    }

    /// Between two steps of a rewrite: gives `storing` up until whoever wants it now has
    /// had it, for at most [`MAX_GAP`]. Handing it over when they queue is not enough:
    /// on two busy cores a thread that wants a held lock spins and yields its core for
    /// about 10 ms before it queues (parking_lot's spinning), and the rewrite's next
    /// step took it back each time (another trip's reader waited 10 ms at p50 with
    /// `MutexGuard::bump`, measured with an owner narrowing a million-point trip back to
    /// back; see `docs/performance.md`).
    fn let_in(&self, storing: &mut StoringGuard<'_>) {
        if self.storing_wanted.load(Ordering::SeqCst) == 0 {
            return;
        }
        MutexGuard::unlocked_fair(storing, || {
            let until = Instant::now() + self.max_gap();
            while self.storing_wanted.load(Ordering::SeqCst) > 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_micros(50));
            }
            // Counted while it queues again, so that another rewrite lets it in too.
            self.storing_wanted.fetch_add(1, Ordering::SeqCst);
        });
        self.storing_wanted.fetch_sub(1, Ordering::SeqCst);
    }

    /// How long [`Inner::let_in`] waits at most.
    fn max_gap(&self) -> Duration {
        #[cfg(test)]
        if let Some(gap) = *self.max_gap.lock() {
            return gap;
        }
        MAX_GAP
    }

    /// The window every narrowing waiting for `trip` leaves, if any waits (the caller
    /// holds `pending`, under which narrowings are recorded).
    pub(super) fn waiting_window(&self, trip: &str) -> Option<(i64, i64)> {
        window_of(self.trims.lock().get(trip)?)
    }

    /// Whether `trip` waits for a narrowing's trim of its settled points.
    pub(super) fn trim_waits(&self, trip: &str) -> bool {
        self.trims_waiting.load(Ordering::SeqCst) > 0 && self.trims.lock().contains_key(trip)
    }

    /// Waits, `storing` given up meanwhile, until no trim rewrites `trip`'s route.
    pub(super) fn wait_for_rewrite_of(&self, trip: &str, storing: &mut StoringGuard<'_>) {
        self.rewritten
            .wait_while(storing, |s| s.rewriting.contains(trip));
    }

    /// Waits, `storing` given up meanwhile, until no trim rewrites any route.
    pub(super) fn wait_for_rewrites(&self, storing: &mut StoringGuard<'_>) {
        self.rewritten
            .wait_while(storing, |s| !s.rewriting.is_empty());
    }

    /// Applies `trip`'s waiting narrowings to its stored points, if it has any (the
    /// caller holds `storing`): each to the fresh pieces written before it, and all of them
    /// to the settled chunks, which hold no point written after a narrowing while one
    /// waits (every settling of the trip runs this first). Off the write path: the route
    /// thread, a reader of the trip or a snapshot does it; it reads and rewrites the
    /// route, in steps, when a settled point lies outside.
    pub(super) fn trim(&self, trip: &str, storing: &mut StoringGuard<'_>) {
        self.wait_for_rewrite_of(trip, storing);
        let narrowings = self.seal(trip);
        self.apply_narrowings(trip, narrowings, storing);
    }

    /// Takes out `trip`'s waiting narrowings, its entry left in place (empty) while they
    /// are applied: its readers still wait for them, and narrowings that come meanwhile
    /// (they take no lock of the store) wait in it for the next trim.
    pub(super) fn seal(&self, trip: &str) -> Vec<Narrowing> {
        if self.trims_waiting.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        self.trims
            .lock()
            .get_mut(trip)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Applies `narrowings`, taken by [`Inner::seal`], to `trip`'s stored points (the
    /// caller holds `storing`, and no rewrite of the trip runs): each to the fresh pieces
    /// written before it, all of them to the settled chunks. Then drops the trip's entry
    /// unless narrowings came meanwhile; if the store failed, the narrowings wait again,
    /// so that readers never read the points they cut (the store is behind the log until
    /// the next start, which replays them).
    pub(super) fn apply_narrowings(
        &self,
        trip: &str,
        narrowings: Vec<Narrowing>,
        storing: &mut StoringGuard<'_>,
    ) {
        let trimmed = if narrowings.is_empty() {
            Ok(Ok(()))
        } else {
            // A panic is told like a failed write (the narrowings wait again, the store is
            // behind its log), then goes on.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(test)]
                if let Some(during) = self.during_trim.lock().take() {
                    during(self);
                }
                let in_piece =
                    |piece: u64| window_of(narrowings.iter().filter(|n| piece < n.before_piece));
                let settled = window_of(&narrowings);
                let fresh = self.store().read().narrow_fresh(trip, in_piece);
                fresh.and_then(|_| match settled {
                    Some((from, to)) => self.rewrite(trip, from, to, storing),
                    None => Ok(()),
                })
            }))
        };
        let mut trims = self.trims.lock();
        match &trimmed {
            // Only once trimmed: a reader that finds no trim waiting reads the trimmed route.
            Ok(Ok(())) => {
                if trims.get(trip).is_some_and(Vec::is_empty) {
                    trims.remove(trip);
                    self.trims_waiting.fetch_sub(1, Ordering::SeqCst);
                }
            }
            failed => {
                self.failed.store(true, Ordering::Release);
                match failed {
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, trip, "route store: a narrowed trip's points were not trimmed; the narrowing will be replayed from the log at the next start")
                    }
                    _ => tracing::error!(
                        trip,
                        "route store: a narrowed trip's trim panicked; the narrowing will be replayed from the log at the next start"
                    ),
                }
                if let Some(waiting) = trims.get_mut(trip) {
                    let later = std::mem::replace(waiting, narrowings);
                    waiting.extend(later);
                }
            }
        }
        drop(trims);
        if let Err(panic) = trimmed {
            std::panic::resume_unwind(panic);
        }
    }

    /// Cuts `trip`'s settled points to `from..=to`: the points kept are read with
    /// `storing` given up, then written back [`Inner::rewrite_step`] at a time, `storing`
    /// offered to whoever waits for it between steps (the caller holds it, and no rewrite
    /// of the trip runs). The trip is in [`Storing::rewriting`] throughout, and out of it
    /// however this ends (a panic too: its readers would wait for it for ever). A rewrite
    /// of the trip left part written by a failed step is finished first: the points it
    /// had still to write exist nowhere else.
    fn rewrite(
        &self,
        trip: &str,
        from: i64,
        to: i64,
        storing: &mut StoringGuard<'_>,
    ) -> Result<(), RouteStoreError> {
        storing.rewriting.insert(trip.into());
        let unfinished = storing.unfinished.remove(trip);
        let rewritten = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(rewrite) = unfinished {
                self.write_back(trip, rewrite, storing)?;
            }
            let started =
                MutexGuard::unlocked(storing, || self.store().read().rewrite(trip, from, to))?;
            match started {
                Some(rewrite) => self.write_back(trip, rewrite, storing),
                None => Ok(()),
            }
        }));
        storing.rewriting.remove(trip);
        self.rewritten.notify_all();
        rewritten.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Writes `rewrite`'s points back, a step at a time, letting others in between; if a
    /// step fails (or panics) once the route is erased, keeps the rewrite in
    /// [`Storing::unfinished`]. Counts the rewrite as begun for the trip's readers
    /// ([`Inner::rewrites_begun`]) before it changes the route, under `storing`.
    fn write_back(
        &self,
        trip: &str,
        mut rewrite: Rewrite,
        storing: &mut StoringGuard<'_>,
    ) -> Result<(), RouteStoreError> {
        self.rewrites_begun(trip).fetch_add(1, Ordering::SeqCst);
        let step = self.rewrite_step();
        loop {
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(test)]
                if self.fail_steps.lock().pop_front().unwrap_or(false) {
                    return Err(RouteStoreError::Figures("a step failed, on purpose".into()));
                }
                rewrite.step(&self.store().read(), step)
            }));
            match stepped {
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    if rewrite.started() {
                        storing.unfinished.insert(trip.into(), rewrite);
                    }
                    return Err(e);
                }
                Err(panic) => {
                    if rewrite.started() {
                        storing.unfinished.insert(trip.into(), rewrite);
                    }
                    std::panic::resume_unwind(panic);
                }
            }
            #[cfg(test)]
            if let Some(between) = self.between_steps.lock().as_mut() {
                between(self);
            }
            self.let_in(storing);
        }
    }

    /// Whether a rewrite of `trip` failed part way, and waits to be finished.
    pub(super) fn part_rewritten(&self, trip: &str, storing: &StoringGuard<'_>) -> bool {
        storing.unfinished.contains_key(trip)
    }

    /// Whether any rewrite failed part way.
    pub(super) fn any_part_rewritten(&self, storing: &StoringGuard<'_>) -> bool {
        !storing.unfinished.is_empty()
    }

    /// Waits for every rewrite under way, then tells whether every route is whole (none
    /// left part rewritten by a failed write): what may be made durable (a settling's
    /// commits, a compaction) only then.
    pub(super) fn routes_whole(&self, storing: &mut StoringGuard<'_>) -> bool {
        self.wait_for_rewrites(storing);
        !self.any_part_rewritten(storing)
    }

    /// The count of rewrites begun among trips that share `trip`'s stripe: a reader of the
    /// trip whose read spans a change of it reads again ([`super::Routes::read_trip`]).
    pub(super) fn rewrites_begun(&self, trip: &str) -> &std::sync::atomic::AtomicU64 {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(trip);
        &self.begun_stripes[(hash % self.begun_stripes.len() as u64) as usize]
    }

    /// Points a rewrite writes back a step.
    fn rewrite_step(&self) -> usize {
        #[cfg(test)]
        if let Some(step) = *self.rewrite_step.lock() {
            return step;
        }
        REWRITE_STEP
    }

    /// How long the route thread leaves trims after one that took `took`.
    pub(super) fn trim_pause(&self, took: Duration) -> Duration {
        #[cfg(test)]
        if let Some(pause) = *self.trim_pause.lock() {
            return pause;
        }
        took * TRIM_PAUSE
    }

    /// Before a part of a settling of the pieces up to `upto` (the caller holds
    /// `storing`): the trims it needs. A trip must be trimmed before points written after
    /// one of its narrowings join its chunks, which the narrowing must not cut (the window
    /// may have been widened since); a trip whose narrowings all came after piece `upto`
    /// has no such point in this settling, and is left to the route thread's own pace
    /// ([`Inner::trim_all_now`]).
    pub(super) fn trim_before_settling(&self, upto: u64, storing: &mut StoringGuard<'_>) {
        if self.trims_waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let due: Vec<Box<str>> = self
            .trims
            .lock()
            .iter()
            .filter(|(_, narrowings)| narrowings.iter().any(|n| n.before_piece <= upto))
            .map(|(trip, _)| trip.clone())
            .collect();
        for trip in due {
            self.trim_paced(trip, storing);
        }
    }

    /// Trims `trip` for the route thread (the caller holds `storing`), and pauses the
    /// trims it runs of its own accord for [`TRIM_PAUSE`] times as long as this one took.
    pub(super) fn trim_paced(&self, trip: Box<str>, storing: &mut StoringGuard<'_>) {
        let started = Instant::now();
        self.trim(&trip, storing);
        let pause = self.trim_pause(started.elapsed());
        self.trim_pacing.lock().trimmed(trip, pause);
    }

    /// Runs every narrowing's trim that waits (the caller holds `storing`).
    pub(super) fn trim_all(&self, storing: &mut StoringGuard<'_>) {
        if self.trims_waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let trips: Vec<Box<str>> = self.trims.lock().keys().cloned().collect();
        for trip in trips {
            self.trim(&trip, storing);
        }
    }

    /// [`super::Routes::narrow`], past its check for recovery.
    pub(super) fn narrow(&self, trip: &str, from: i64, to: i64) {
        // Recorded under the `pending` lock: a settling of the trip takes its waiting
        // points and its narrowings together ([`Inner::store_trip`]). The trip's waiting
        // points are cut by whoever takes them out (a scan of them all here, for every
        // narrowing, held every write: see `pending`'s doc).
        let mut pending = self.pending.lock();
        pending.cut_trip(trip, from, to);
        let dropped = pending.take_cut_away();
        self.pending_points.fetch_sub(dropped, Ordering::SeqCst);
        let narrowing = Narrowing {
            before_piece: self.next_piece.load(Ordering::SeqCst),
            from,
            to,
        };
        let (too_many, many) = {
            let mut trims = self.trims.lock();
            match trims.get_mut(trip) {
                Some(waiting) => {
                    // A narrowing whose window holds this one's cuts nothing this one
                    // does not: this one reaches every piece before it, and more.
                    waiting.retain(|n| !(n.from <= from && to <= n.to));
                    match waiting.last_mut() {
                        // No piece written since the last: one narrowing, both windows.
                        Some(last) if last.before_piece == narrowing.before_piece => {
                            last.from = last.from.max(from);
                            last.to = last.to.min(to);
                        }
                        _ => waiting.push(narrowing),
                    }
                    (
                        waiting.len() > MAX_NARROWINGS,
                        waiting.len() >= MANY_NARROWINGS,
                    )
                }
                None => {
                    trims.insert(trip.into(), vec![narrowing]);
                    self.trims_waiting.fetch_add(1, Ordering::SeqCst);
                    (false, false)
                }
            }
        };
        drop(pending);
        if too_many {
            let mut storing = self.lock_storing();
            self.trim(trip, &mut storing);
        } else if !self.trim_pacing.lock().paused() || many {
            // (In its pause, the route thread trims at its end: it naps until then.)
            *self.awake.lock() = true;
            self.wake.notify_one();
        }
    }
}
