//! Server-Sent Events: turning a fence subscription or a live map into a
//! `text/event-stream` answer, and the limits on streams.
//!
//! A fence stream sends the retained events after the client's last one (or a `reset`),
//! then live events as they are published, each with its `id:` (so a reconnecting client
//! resumes with `Last-Event-ID`), `event:` kind and a JSON `data:` line. It ends after a
//! `deleted` event, after a `reset` (the client lists again), when the server shuts down,
//! or when the client goes away. Comment lines every 15 seconds keep idle connections open
//! through proxies.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio_util::sync::CancellationToken;

use super::dto::{EventDataOut, TravellerAtOut, event_name};
use crate::events::{Event, EventLog, Next, ResetReason, Start, Subscription};
use crate::fences::{WatchHandle, WatchNext};
use crate::travellers::TravellerAt;

/// How often an idle stream gets a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Streams (or live maps) held open per holder, bounded (`--max-streams-per-key`,
/// `--max-maps-per-owner`).
pub type StreamSlots = super::quota::Quota<StreamHolder>;

/// Whose streams are counted together: an owner's (a key's, or a traveller token's), or on
/// an open server a client address's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamHolder {
    /// A key or a traveller token, by the owner it is.
    Owner(std::sync::Arc<str>),
    /// A client of an open server, by its address.
    Address(std::net::IpAddr),
}

impl StreamHolder {
    /// A client by its address; an IPv6 client by its /64, the block one host is given,
    /// so that one host's many addresses count as one.
    pub fn address(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !(u128::from(u64::MAX));
                Self::Address(std::net::IpAddr::V6(bits.into()))
            }
            v4 => Self::Address(v4),
        }
    }
}

/// One stream's places in its holder's counts (a live map holds a place among the
/// holder's streams and one among its maps), given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    /// Its place among the holder's streams.
    pub stream: super::quota::QuotaSlot<StreamHolder>,
    /// Its place among the holder's live maps.
    pub map: Option<super::quota::QuotaSlot<StreamHolder>>,
}

/// What a fence stream needs while it runs.
struct Feed {
    backlog: VecDeque<Arc<Event>>,
    reset: Option<ResetReason>,
    subscription: Subscription,
    log: Arc<EventLog>,
    stopping: CancellationToken,
    done: bool,
    _slot: StreamSlot,
}

/// The SSE answer for a subscription to fence events.
pub fn fence_stream(
    subscription: Subscription,
    log: Arc<EventLog>,
    slot: StreamSlot,
    stopping: CancellationToken,
) -> Response {
    let (backlog, reset) = match &subscription.start {
        Start::Events(events) => (events.iter().cloned().collect(), None),
        Start::Reset(reason) => (VecDeque::new(), Some(*reason)),
    };
    let feed = Feed {
        backlog,
        reset,
        subscription,
        log,
        stopping,
        done: false,
        _slot: slot,
    };
    Sse::new(events_of(feed))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn events_of(feed: Feed) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(feed, |mut feed| async move {
        if feed.done {
            return None;
        }
        if let Some(reason) = feed.reset.take() {
            feed.done = true;
            return Some((Ok(reset_event(reason)), feed));
        }
        let next = match feed.backlog.pop_front() {
            Some(event) => Next::Event(event),
            None => {
                let stopping = feed.stopping.clone();
                tokio::select! {
                    next = feed.subscription.next() => next,
                    () = stopping.cancelled() => return None,
                }
            }
        };
        match next {
            Next::Event(event) => {
                feed.done = event.event.kind == crate::events::EventKind::Deleted;
                let sse = fence_event(&feed.log, &event);
                Some((Ok(sse), feed))
            }
            Next::Reset => {
                feed.done = true;
                Some((Ok(reset_event(ResetReason::FellBehind)), feed))
            }
        }
    })
}

/// How a cluster node writes a fence event for JetStream (`--cluster-events`): its
/// kind's name and the JSON of its SSE data line.
pub fn event_encoder() -> crate::cluster::EventEncoder {
    crate::cluster::EventEncoder(std::sync::Arc::new(|event: &Event| {
        let data = serde_json::to_vec(&EventDataOut::from(event)).expect("event data serializes");
        (event_name(event.event.kind), data)
    }))
}

fn fence_event(log: &EventLog, event: &Event) -> SseEvent {
    let data = serde_json::to_string(&EventDataOut::from(event)).expect("event data serializes");
    SseEvent::default()
        .id(log.id_of(event.place).to_string())
        .event(event_name(event.event.kind))
        .data(data)
}

/// A `reset`: no id (the client resumes from a fresh listing), and why.
fn reset_event(reason: ResetReason) -> SseEvent {
    let data = serde_json::json!({ "reason": reason.describe() }).to_string();
    SseEvent::default().event("reset").data(data)
}

/// A live map's frames: its changes, drained and written as SSE, numbered. Built on the
/// maps' pool ([`super::work::on_the_map_pool`]), never on the async workers.
pub struct MapFrames {
    handle: WatchHandle,
    sent: u64,
}

impl MapFrames {
    /// The frames of the map `handle` holds.
    pub fn new(handle: WatchHandle) -> Self {
        Self { handle, sent: 0 }
    }

    /// The first frame: a `snapshot` event a traveller.
    pub fn snapshot(&mut self, snapshot: &[TravellerAt]) -> String {
        let mut frame = String::new();
        for traveller in snapshot {
            self.event(&mut frame, "snapshot", traveller);
        }
        frame
    }

    /// The next frame: every change waiting, each traveller once, as it is now; and
    /// whether the map is ended (it fell too far behind: the frame ends with a `reset`).
    fn next_frame(&mut self) -> (String, bool) {
        let mut frame = String::new();
        let mut ended = false;
        for next in self.handle.drain() {
            match next {
                WatchNext::Entered(t) => self.event(&mut frame, "entered", &t),
                WatchNext::Moved(t) => self.event(&mut frame, "moved", &t),
                WatchNext::Left(t) => self.event(&mut frame, "left", &t),
                WatchNext::Reset => {
                    ended = true;
                    let reason = serde_json::json!({"reason": "this map fell too far behind and was ended; open it again"});
                    frame.push_str(&format!("event: reset\ndata: {reason}\n\n"));
                }
            }
        }
        (frame, ended)
    }

    /// Appends one event to `frame`: `id`, `event` and the traveller as its `data` line.
    fn event(&mut self, frame: &mut String, kind: &str, traveller: &TravellerAt) {
        use std::fmt::Write as _;
        self.sent += 1;
        let data = serde_json::to_string(&TravellerAtOut::from(traveller))
            .expect("a traveller serializes");
        let _ = write!(frame, "id: {}\nevent: {kind}\ndata: {data}\n\n", self.sent);
    }
}

/// What a live map's stream needs while it runs.
struct MapFeed {
    first: Option<String>,
    /// Away on the maps' pool while a frame is built.
    frames: Option<MapFrames>,
    stopping: CancellationToken,
    frame_every: Duration,
    last_frame: tokio::time::Instant,
    done: bool,
    _slot: StreamSlot,
}

impl Drop for MapFeed {
    /// Closing a map forgets it for each traveller it shows: work for the maps' pool.
    fn drop(&mut self) {
        if let Some(frames) = self.frames.take() {
            super::work::drop_on_the_map_pool(frames);
        }
    }
}

/// The SSE answer for a live map: `first` (its `snapshot` events, one a traveller), then
/// `entered`, `moved` and `left` as they happen, each numbered; a `reset` if it falls too
/// far behind.
///
/// Changes are sent in frames, at most one each `frame_every`, as a map draws them: each
/// frame holds every traveller that changed since the last, once, as it is now (a
/// traveller that moved ten times in a frame's time is sent once). So a busy map costs its
/// server one write a frame, not one an update, however many travellers move; and frames
/// are built on the maps' lower-priority pool, so that when the server is short of CPU the
/// frames come later (still each traveller's newest position) and the writes do not slow.
pub fn map_stream(
    frames: MapFrames,
    first: String,
    slot: StreamSlot,
    stopping: CancellationToken,
    frame_every: Duration,
) -> Response {
    let feed = MapFeed {
        first: Some(first),
        frames: Some(frames),
        stopping,
        frame_every,
        last_frame: tokio::time::Instant::now(),
        done: false,
        _slot: slot,
    };
    let frames = futures_util::stream::unfold(feed, |mut feed| async move {
        if feed.done {
            return None;
        }
        if let Some(first) = feed.first.take()
            && !first.is_empty()
        {
            return Some((Ok::<_, Infallible>(axum::body::Bytes::from(first)), feed));
        }
        loop {
            let stopping = feed.stopping.clone();
            let waiting = feed.frames.as_ref()?;
            tokio::select! {
                () = waiting.handle.changed() => {}
                () = stopping.cancelled() => return None,
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    // A comment line keeps an idle stream open through proxies.
                    return Some((Ok(axum::body::Bytes::from_static(b":\n\n")), feed));
                }
            }
            // Changes that come until the frame is due join it.
            tokio::time::sleep_until(feed.last_frame + feed.frame_every).await;
            feed.last_frame = tokio::time::Instant::now();
            let mut frames = feed.frames.take()?;
            let built = super::work::on_the_map_pool(move || {
                let (frame, ended) = frames.next_frame();
                (frames, frame, ended)
            })
            .await;
            let Ok((frames, frame, ended)) = built else {
                return None;
            };
            feed.frames = Some(frames);
            feed.done = ended;
            if !frame.is_empty() {
                return Some((Ok(axum::body::Bytes::from(frame)), feed));
            }
        }
    });
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/event-stream"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(frames),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::StreamHolder;

    /// An IPv6 client counts by its /64; an IPv4 client by its address.
    #[test]
    fn clients_count_by_address_and_ipv6_clients_by_their_64() {
        let at = |s: &str| StreamHolder::address(s.parse().expect("an address"));
        assert_eq!(at("2001:db8:1:2::1"), at("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(at("2001:db8:1:2::1"), at("2001:db8:1:3::1"));
        assert_eq!(at("192.0.2.1"), at("192.0.2.1"));
        assert_ne!(at("192.0.2.1"), at("192.0.2.2"));
    }
}
