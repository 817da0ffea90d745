//! Background threads' CPU priority: the threads that judge fences and live maps and build
//! live maps' frames run below the threads that answer requests.
//!
//! Their work grows with what callers set up (fences, maps) and waits without harm: a
//! judgement that runs late still runs, and a frame that comes late holds every traveller's
//! newest position. Requests cannot wait. So these threads are niced (Linux's per-thread
//! nice): when the cores are busy, the scheduler gives a request thread about ten times a
//! background thread's share, and when they are idle, background work takes all it wants.
//! Measured by `scripts/attacks.sh` (1,040 whole-world live maps, a victim sending
//! batches): see "Under attack" in docs/performance.md.

/// Background threads' priority on the crate's scale of 0 to 99, which Linux maps to a
/// nice of 10 (asserted below): about a tenth of a default thread's CPU weight (110
/// against 1024 in Linux's scheduler).
const PRIORITY: u8 = 22;

/// Lowers the calling thread's CPU priority to the background's. A platform that refuses
/// leaves it as it was (logged once per thread): slower requests under load, nothing wrong.
pub fn lower_this_thread() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    let priority = ThreadPriorityValue::try_from(PRIORITY).map(ThreadPriority::Crossplatform);
    let set = priority
        .map_err(|e| e.to_string())
        .and_then(|p| set_current_thread_priority(p).map_err(|e| e.to_string()));
    if let Err(e) = set {
        tracing::debug!(error = %e, "cannot lower this background thread's priority");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_background_thread_is_niced_and_others_are_not() {
        fn nice() -> i32 {
            // The nice value is the 19th field of /proc/thread-self/stat (after the command
            // in parentheses).
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("readable");
            let after = stat.rsplit_once(") ").expect("a command in parentheses").1;
            after
                .split(' ')
                .nth(16)
                .expect("the nice field")
                .parse()
                .expect("a number")
        }
        let before = nice();
        let lowered = std::thread::spawn(|| {
            super::lower_this_thread();
            nice()
        })
        .join()
        .expect("the thread runs");
        assert_eq!(lowered, 10);
        assert_eq!(nice(), before, "only the calling thread is lowered");
    }
}
