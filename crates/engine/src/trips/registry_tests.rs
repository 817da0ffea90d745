//! [`super::Trips`] on its own: which trip holds a position, overlaps, who a running trip
//! shares with, and links until they expire or are revoked.

use super::*;

fn trip(id: &str, who: &str, start: i64, end: Option<i64>) -> Trip {
    Trip::new(id.into(), who.into(), "".into(), start, end).expect("valid")
}

/// The trip holding a report of `traveller` at `ts`, if any.
fn holding(trips: &Trips, traveller: &str, ts: i64) -> Option<String> {
    let mut found = None;
    trips.for_each_holding([(traveller, ts)], |i, trip| {
        assert_eq!(i, 0);
        found = Some(trip.to_owned());
    });
    found
}

#[test]
fn positions_fall_in_the_one_trip_whose_window_holds_them() {
    let trips = Trips::new();
    assert_eq!(holding(&trips, "ann", 5), None);
    trips.put(trip("a", "ann", 10, Some(20)), 0);
    trips.put(trip("b", "ann", 30, None), 0);
    assert_eq!(holding(&trips, "ann", 9), None);
    assert_eq!(holding(&trips, "ann", 10).as_deref(), Some("a"));
    assert_eq!(holding(&trips, "ann", 20).as_deref(), Some("a"));
    assert_eq!(holding(&trips, "ann", 25), None);
    assert_eq!(holding(&trips, "ann", i64::MAX).as_deref(), Some("b"));
    assert_eq!(holding(&trips, "bob", 15), None);
    // A batch: each report's index with its trip, the others left out.
    let mut found = Vec::new();
    trips.for_each_holding(
        [("ann", 9), ("ann", 10), ("bob", 15), ("ann", i64::MAX)],
        |i, trip| found.push((i, trip.to_owned())),
    );
    assert_eq!(found, vec![(1, "a".to_owned()), (3, "b".to_owned())]);
    assert!(matches!(
        trips.check_put(&trip("c", "ann", 15, Some(35))),
        Err(TripError::Overlap { .. })
    ));
    assert!(trips.check_put(&trip("c", "ann", 21, Some(29))).is_ok());
    assert!(
        trips.check_put(&trip("a", "ann", 10, Some(25))).is_ok(),
        "itself"
    );
    assert!(matches!(
        trips.check_put(&trip("a", "bob", 10, None)),
        Err(TripError::OtherTraveller { .. })
    ));
    assert_eq!(
        trips
            .of_traveller("ann")
            .iter()
            .map(|r| r.trip.id())
            .collect::<Vec<_>>(),
        ["b", "a"]
    );
}

#[test]
fn a_running_trip_shares_with_its_followers_until_it_ends() {
    let trips = Trips::new();
    trips.put(trip("a", "ann", 10, Some(20)), 0);
    assert_eq!(trips.share_at("ann", 15), None, "no followers");
    trips.add_follower("a", "mum");
    let share = trips.share_at("ann", 15).expect("running");
    assert!(share.allows(Some("mum"), 12));
    assert!(!share.allows(Some("mum"), 9), "a position before the trip");
    assert!(!share.allows(Some("eve"), 12));
    assert_eq!(trips.share_at("ann", 20), None, "ended");
    assert_eq!(trips.share_at("ann", 9), None, "not started");
    assert_eq!(trips.take_due(10), ["ann"]);
    assert_eq!(trips.next_due(), Some(20));
}

#[test]
fn links_open_until_they_expire_or_are_revoked() {
    let trips = Trips::new();
    trips.put(trip("a", "ann", 10, None), 0);
    let (link, token) = Link::mint(100, None, None);
    let link_id = link.id.clone();
    assert!(trips.add_link("a", link));
    assert!(trips.open_link(&token, 99).is_some());
    assert!(trips.open_link(&token, 100).is_none(), "expired");
    assert!(trips.revoke_link("a", &link_id));
    assert!(trips.open_link(&token, 50).is_none(), "revoked");
    let (link, token) = Link::mint(100, None, None);
    trips.add_link("a", link);
    trips.take_due(100);
    assert!(trips.get("a").expect("there").links.is_empty());
    assert!(trips.open_link(&token, 50).is_none(), "dropped when due");
    let (link, token) = Link::mint(1_000, None, None);
    trips.add_link("a", link);
    trips.remove("a");
    assert!(trips.open_link(&token, 50).is_none(), "trip deleted");
}

#[derive(Debug, Clone)]
enum DueOp {
    Put {
        trip: usize,
        start: i64,
        end: Option<i64>,
    },
    Remove {
        trip: usize,
    },
    AddLink {
        trip: usize,
        expires_at: i64,
    },
    Revoke {
        trip: usize,
        nth: usize,
    },
    Tick {
        by: i64,
    },
}

fn due_op() -> impl proptest::strategy::Strategy<Value = DueOp> {
    use proptest::prelude::*;
    // Few trips and instants, so that instants coincide: a link expiring when its trip ends.
    let at = || 0i64..40;
    prop_oneof![
        (0usize..3, at(), proptest::option::of(at())).prop_map(|(trip, start, end)| DueOp::Put {
            trip,
            start,
            end: end.map(|e| e.max(start))
        }),
        (0usize..3).prop_map(|trip| DueOp::Remove { trip }),
        (0usize..3, at()).prop_map(|(trip, expires_at)| DueOp::AddLink { trip, expires_at }),
        (0usize..3, 0usize..3).prop_map(|(trip, nth)| DueOp::Revoke { trip, nth }),
        (0i64..6).prop_map(|by| DueOp::Tick { by }),
    ]
}

proptest::proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    /// The instants due are only those of trips and links as they are (a trip put again
    /// with new times, removed, or a link revoked takes its own out), and every link's
    /// expiry is among them until its tick drops the link: the set is bounded by the trips
    /// and their links however often a caller changes them.
    #[test]
    fn the_instants_due_are_those_of_the_trips_and_links_as_they_are(
        ops in proptest::collection::vec(due_op(), 1..60),
    ) {
        let trips = Trips::new();
        let mut now = 0;
        for op in ops {
            match op {
                DueOp::Put { trip: t, start, end } => {
                    // One traveller a trip: no overlaps to check.
                    let _ = trips.put(trip(&format!("t{t}"), &format!("w{t}"), start, end), now);
                }
                DueOp::Remove { trip } => {
                    let _ = trips.remove(&format!("t{trip}"));
                }
                DueOp::AddLink { trip, expires_at } => {
                    let (link, _) = Link::mint(now + 1 + expires_at, None, None);
                    let _ = trips.add_link(&format!("t{trip}"), link);
                }
                DueOp::Revoke { trip, nth } => {
                    let id = format!("t{trip}");
                    if let Some(link) = trips.get(&id).and_then(|r| r.links.get(nth).cloned()) {
                        proptest::prop_assert!(trips.revoke_link(&id, &link.id));
                    }
                }
                DueOp::Tick { by } => {
                    now += by;
                    let _ = trips.take_due(now);
                }
            }
            let due = trips.due_entries();
            for (at, id) in &due {
                proptest::prop_assert!(
                    trips.instants_of(id).contains(at),
                    "{at} of {id} is due, but no longer the trip's: {due:?}"
                );
            }
            for t in 0..3 {
                let id = format!("t{t}");
                for link in trips.get(&id).map(|r| r.links).unwrap_or_default() {
                    proptest::prop_assert!(
                        due.contains(&(link.expires_at, id.clone())),
                        "link of {id} expiring at {} not due: {due:?}", link.expires_at
                    );
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum FollowOp {
    /// Trip `id` put for traveller `who` from `start`, if `check_put` lets it.
    Put {
        id: usize,
        who: usize,
        start: i64,
    },
    Remove {
        id: usize,
    },
    Follow {
        id: usize,
        viewer: usize,
    },
    Unfollow {
        id: usize,
        viewer: usize,
    },
    /// Exported and restored, as a snapshot does.
    Restore {
        id: usize,
    },
}

const IDS: [&str; 4] = ["a", "b", "c", "d"];
const WHO: [&str; 2] = ["ann", "bob"];
const VIEWERS: [&str; 3] = ["mum", "dad", "eve"];

fn follow_op() -> impl proptest::strategy::Strategy<Value = FollowOp> {
    use proptest::prelude::*;
    prop_oneof![
        (0..4usize, 0..2usize, 0i64..5).prop_map(|(id, who, start)| FollowOp::Put {
            id,
            who,
            start: start * 10
        }),
        (0..4usize).prop_map(|id| FollowOp::Remove { id }),
        (0..4usize, 0..3usize).prop_map(|(id, viewer)| FollowOp::Follow { id, viewer }),
        (0..4usize, 0..3usize).prop_map(|(id, viewer)| FollowOp::Unfollow { id, viewer }),
        (0..4usize).prop_map(|id| FollowOp::Restore { id }),
    ]
}

proptest::proptest! {
    #![proptest_config(crate::testing::proptest_config(128))]

    /// Through puts (a start moved), removals, follows, unfollows and restores, a
    /// follower's pages of a traveller's trips, read from the followers' index, are the
    /// trips it follows as the trips themselves say, newest first; and the index holds an
    /// entry for each (follower, trip), no more.
    #[test]
    fn a_followers_pages_are_the_trips_it_follows(
        ops in proptest::collection::vec(follow_op(), 1..40),
        take in 1usize..4,
    ) {
        let trips = Trips::new();
        for op in ops {
            match op {
                FollowOp::Put { id, who, start } => {
                    // An id stays its traveller's, as `check_put` holds it.
                    // As the engine puts them: checked first (an id stays its traveller's,
                    // a traveller's trips never overlap).
                    let t = trip(IDS[id], WHO[who], start, Some(start + 5));
                    if trips.check_put(&t).is_ok() {
                        trips.put(t, 0);
                    }
                }
                FollowOp::Remove { id } => {
                    trips.remove(IDS[id]);
                }
                FollowOp::Follow { id, viewer } => {
                    trips.add_follower(IDS[id], VIEWERS[viewer]);
                }
                FollowOp::Unfollow { id, viewer } => {
                    trips.remove_follower(IDS[id], VIEWERS[viewer]);
                }
                FollowOp::Restore { id } => {
                    if let Some(record) = trips.get(IDS[id]) {
                        trips.restore(record, 0);
                    }
                }
            }
            let mut entries = 0;
            for who in WHO {
                let all = trips.of_traveller(who);
                entries += all.iter().map(|r| r.followers.len()).sum::<usize>();
                for viewer in VIEWERS {
                    let want: Vec<String> = all
                        .iter()
                        .filter(|r| r.followers.iter().any(|f| f == viewer))
                        .map(|r| r.trip.id().to_owned())
                        .collect();
                    let mut got = Vec::new();
                    let mut after: Option<(i64, String)> = None;
                    for pages in 0.. {
                        proptest::prop_assert!(pages <= IDS.len(), "paging goes on: {:?}", got);
                        let page = trips.page_followed(
                            who,
                            viewer,
                            after.as_ref().map(|(s, id)| (*s, id.as_str())),
                            take,
                            |_| true,
                        );
                        proptest::prop_assert!(page.len() <= take);
                        got.extend(page.iter().map(|r| r.trip.id().to_owned()));
                        match page.last() {
                            Some(last) if page.len() == take => {
                                after = Some((last.trip.started_at(), last.trip.id().to_owned()));
                            }
                            _ => break,
                        }
                    }
                    proptest::prop_assert_eq!(got, want, "{} as seen by {}", who, viewer);
                }
            }
            proptest::prop_assert_eq!(trips.followed_entries(), entries);
        }
    }
}
