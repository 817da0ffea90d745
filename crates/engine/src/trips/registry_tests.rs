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
