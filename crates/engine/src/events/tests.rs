//! The log's promises: resuming inside the window gives every later event of the fences
//! followed, in order, none twice; outside it, from another run, or from before a fence was
//! (re)created, a reset; a subscriber that fills its queue ends with a reset while one that
//! keeps up misses nothing; and an owner's ids say nothing about other owners' events.

use super::*;
use crate::geometry::LatLon;
use crate::ids::FenceKey;

/// The owner of most test fences.
const ME: &str = "key:me";

fn config(buffer: usize) -> EventConfig {
    EventConfig {
        retention_ms: 60_000,
        max_retained: 100,
        subscriber_buffer: buffer,
        max_subscribers: 3,
    }
}

fn event_of(owner: &str, fence: &str, traveller: &str) -> NewEvent {
    NewEvent {
        fence: FenceKey::new(owner, fence),
        kind: EventKind::Enter,
        traveller: Some(TravellerAt {
            id: traveller.into(),
            position: LatLon { lat: 1.0, lon: 2.0 },
            ts: 3,
        }),
        cause: Some(Cause::Moved),
        distance_m: None,
        around: None,
    }
}

fn event(fence: &str, traveller: &str) -> NewEvent {
    event_of(ME, fence, traveller)
}

fn fences(ids: &[&str]) -> Vec<Arc<str>> {
    ids.iter().map(|id| Arc::from(*id)).collect()
}

fn subscribe(log: &Arc<EventLog>, ids: &[&str], after: Option<EventId>) -> Subscription {
    log.subscribe(ME, fences(ids), &[], after, 0).expect("room")
}

fn travellers(events: &[Arc<Event>]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.event
                .traveller
                .as_ref()
                .map_or(String::new(), |t| t.id.clone())
        })
        .collect()
}

fn drain(s: &mut Subscription) -> (Vec<Arc<Event>>, bool) {
    let mut got = Vec::new();
    loop {
        match s.try_next() {
            Some(Next::Event(e)) => got.push(e),
            Some(Next::Reset) => return (got, true),
            None => return (got, false),
        }
    }
}

#[test]
fn resuming_inside_the_window_gives_every_later_event_of_the_fences_followed() {
    let log = Arc::new(EventLog::new(config(16)));
    log.publish(1_000, [event("a", "t1"), event("b", "t2")]);
    let listed = log.head(ME);
    log.publish(
        1_001,
        [event("a", "t3"), event("b", "t4"), event("c", "t5")],
    );
    let mut s = subscribe(&log, &["a", "c"], Some(listed));
    let Start::Events(backlog) = s.start.clone() else {
        panic!("inside the window");
    };
    assert_eq!(travellers(&backlog), ["t3", "t5"]);
    log.publish(1_002, [event("b", "t6"), event("a", "t7")]);
    let (live, reset) = drain(&mut s);
    assert_eq!((travellers(&live), reset), (vec!["t7".to_string()], false));
    let seqs: Vec<Place> = backlog.iter().chain(&live).map(|e| e.place).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn an_owners_ids_say_nothing_of_other_owners_events() {
    let log = Arc::new(EventLog::new(config(16)));
    log.publish(1_000, [event("a", "t1")]);
    let before = log.head(ME);
    // Another owner's fences have a busy second.
    for i in 0..50 {
        log.publish(1_001, [event_of("key:other", "a", &format!("x{i}"))]);
    }
    log.publish(1_002, [event("a", "t2")]);
    let after = log.head(ME);
    assert_eq!(before.to_string().rsplit('-').next(), Some("1"));
    assert_eq!(
        after.to_string().rsplit('-').next(),
        Some("2"),
        "my next event is my second, whatever the other owner did"
    );
    // The other owner's stream of its own fence `a` never carries mine.
    let s = log
        .subscribe(
            "key:other",
            fences(&["a"]),
            &[],
            Some(log.id_of(Place::after(0))),
            0,
        )
        .expect("room");
    let Start::Events(backlog) = s.start.clone() else {
        panic!("inside the window");
    };
    assert_eq!(backlog.len(), 50);
    assert!(backlog.iter().all(|e| &*e.event.fence.owner == "key:other"));
}

#[test]
fn resuming_from_before_the_window_another_run_or_a_fences_birth_is_a_reset() {
    let log = Arc::new(EventLog::new(config(16)));
    let old = log.head(ME);
    log.publish(1_000, [event("a", "t1")]);
    log.publish(1_000 + 61_000, [event("a", "t2")]);
    let s = subscribe(&log, &["a"], Some(old));
    assert_eq!(
        s.start,
        Start::Reset(ResetReason::Gap),
        "t1 is past the window"
    );
    let other = EventId {
        epoch: log.head(ME).epoch.wrapping_add(1),
        place: Place::after(1),
    };
    let s = subscribe(&log, &["a"], Some(other));
    assert_eq!(s.start, Start::Reset(ResetReason::OtherRun));
    // Fence `a` was deleted and made again after event 2: an id from its earlier life
    // gets a reset, never the old fence's events.
    let earlier_life = log.head(ME);
    let born = log.head(ME).place;
    log.publish(1_000 + 61_001, [event("a", "t3")]);
    let reborn = Place::after(born.record + 1);
    let s = log
        .subscribe(ME, fences(&["a"]), &[reborn], Some(earlier_life), 0)
        .expect("room");
    assert_eq!(s.start, Start::Reset(ResetReason::Recreated));
    assert_eq!(log.subscribers(), 0, "a reset subscription holds no place");
}

#[test]
fn a_subscriber_that_cannot_keep_up_is_reset_while_another_misses_nothing() {
    let log = Arc::new(EventLog::new(config(4)));
    let mut slow = subscribe(&log, &["a"], None);
    let mut healthy = subscribe(&log, &["a"], None);
    let mut seen = Vec::new();
    for i in 0..10 {
        log.publish(1_000 + i, [event("a", &format!("t{i}"))]);
        let (got, reset) = drain(&mut healthy);
        assert!(!reset);
        seen.extend(got);
    }
    assert_eq!(seen.len(), 10, "the healthy one got every event");
    let (got, reset) = drain(&mut slow);
    assert_eq!(
        (got.len(), reset),
        (4, true),
        "the slow one got what fit, then a reset"
    );
    assert_eq!(log.subscribers(), 1);
}

#[test]
fn the_subscriber_limit_is_kept_and_places_are_given_back() {
    let log = Arc::new(EventLog::new(config(4)));
    let held: Vec<Subscription> = (0..3).map(|_| subscribe(&log, &["a"], None)).collect();
    assert_eq!(
        log.subscribe(ME, fences(&["a"]), &[], None, 0)
            .expect_err("full"),
        SubscribeError::TooManySubscribers(3)
    );
    drop(held);
    assert_eq!(log.subscribers(), 0);
    assert!(log.subscribe(ME, fences(&["a"]), &[], None, 0).is_ok());
}

#[test]
fn event_ids_read_back_and_refuse_anything_else() {
    let id = EventId {
        epoch: 0xdead_beef,
        place: Place::after(42),
    };
    assert_eq!(id.to_string(), "deadbeef-42");
    assert_eq!("deadbeef-42".parse::<EventId>(), Ok(id));
    let in_interval = EventId {
        epoch: 0xdead_beef,
        place: Place {
            record: 42,
            index: 7,
        },
    };
    assert_eq!(in_interval.to_string(), "deadbeef-42.7");
    assert_eq!("deadbeef-42.7".parse::<EventId>(), Ok(in_interval));
    let start = "deadbeef-42.0"
        .parse::<EventId>()
        .expect("an interval's start");
    assert!(start < in_interval);
    for bad in [
        "",
        "42",
        "deadbeef",
        "xyz-1",
        "deadbeef--1",
        "dead-1",
        "deadbeef-1.",
        "deadbeef-.1",
        "deadbeef-1.2.3",
        "deadbeef-1.4294967295",
        "deadbeef-+1",
    ] {
        assert!(bad.parse::<EventId>().is_err(), "{bad}");
    }
}

fn exit(fence: &str, traveller: &str) -> NewEvent {
    NewEvent {
        kind: EventKind::Exit,
        ..event(fence, traveller)
    }
}

fn deleted(fence: &str) -> NewEvent {
    NewEvent {
        kind: EventKind::Deleted,
        traveller: None,
        cause: None,
        ..event(fence, "")
    }
}

/// The ids and events of everything retained of `ME`'s, as a client of every fence would
/// see them.
fn everything(log: &Arc<EventLog>, after: EventId) -> Vec<(String, NewEvent)> {
    let s = subscribe(log, &["a", "b", "c"], Some(after));
    let Start::Events(events) = s.start.clone() else {
        panic!("inside the window: {:?}", s.start);
    };
    events
        .iter()
        .map(|e| (log.id_of(e.place).to_string(), e.event.clone()))
        .collect()
}

#[test]
fn cluster_nodes_number_a_changes_events_alike_whatever_order_they_judged_them_in() {
    // Two nodes judge the same change; the fences come out in another order on each (as
    // their cell indexes may give them), but each traveller's events within a fence in
    // the order they happened.
    let orders: [Vec<NewEvent>; 2] = [
        vec![
            event("b", "t2"),
            event("a", "t9"),
            exit("a", "t1"),
            event("a", "t1"),
            deleted("c"),
            exit("c", "t3"),
        ],
        vec![
            exit("c", "t3"),
            deleted("c"),
            exit("a", "t1"),
            event("a", "t9"),
            event("b", "t2"),
            event("a", "t1"),
        ],
    ];
    let mut seen = Vec::new();
    for order in orders {
        let log = Arc::new(EventLog::new(config(16)));
        log.join_cluster(0x0abc_0def);
        log.new_interval(40);
        log.start_here(true);
        let listed = log.head(ME);
        assert_eq!(listed.to_string(), "0abc0def-40.0");
        log.begin_record();
        for e in order {
            log.publish(1_000, [e]);
        }
        log.end_record();
        assert_eq!(log.head(ME).to_string(), "0abc0def-40.6");
        seen.push(everything(&log, listed));
    }
    assert_eq!(seen[0], seen[1]);
    let ids: Vec<&str> = seen[0].iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "0abc0def-40.1",
            "0abc0def-40.2",
            "0abc0def-40.3",
            "0abc0def-40.4",
            "0abc0def-40.5",
            "0abc0def-40.6"
        ]
    );
    let (_, first) = &seen[0][0];
    assert_eq!(
        (first.kind, first.traveller.as_ref().map(|t| t.id.as_str())),
        (EventKind::Exit, Some("t1")),
        "t1 left a, then entered it again"
    );
    assert_eq!(
        seen[0][5].1.kind,
        EventKind::Deleted,
        "a fence's deletion comes last"
    );
}

#[test]
fn a_cluster_client_resumes_mid_interval_and_not_from_before_the_node_judged() {
    let log = Arc::new(EventLog::new(config(16)));
    log.join_cluster(7);
    log.new_interval(10);
    log.start_here(true);
    log.begin_record();
    log.publish(
        1_000,
        [event("a", "t1"), event("a", "t2"), event("a", "t3")],
    );
    log.end_record();
    let mid = "00000007-10.1".parse().expect("an id");
    let rest: Vec<String> = everything(&log, mid)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rest, ["00000007-10.2", "00000007-10.3"]);
    // A tick begins the next interval: numbers start again, still rising.
    log.new_interval(11);
    log.begin_record();
    log.publish(2_000, [event("a", "t4")]);
    log.end_record();
    let later: Vec<String> = everything(&log, mid)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(later, ["00000007-10.2", "00000007-10.3", "00000007-11.1"]);
    let before = "00000007-9.3".parse().expect("an id");
    let s = subscribe(&log, &["a"], Some(before));
    assert_eq!(
        s.start,
        Start::Reset(ResetReason::Gap),
        "this node did not judge interval 9"
    );
    let ahead = "00000007-12.0".parse().expect("an id");
    let s = subscribe(&log, &["a"], Some(ahead));
    assert_eq!(s.start, Start::Reset(ResetReason::OtherRun));
}

#[test]
fn a_cluster_interval_never_goes_back_whatever_the_ticks_say() {
    let log = EventLog::new(config(16));
    log.join_cluster(7);
    log.new_interval(100);
    log.new_interval(90);
    assert_eq!(
        log.interval(),
        101,
        "a tick from a slow clock still moves on"
    );
    let single = EventLog::new(config(16));
    single.new_interval(100);
    assert_eq!(single.interval(), 0, "a single node has no intervals");
}
