//! Devices through the engine: a token made, revoked and made again keeps working (or not)
//! across a restart, from a snapshot and from the log's tail alike; deleting a traveller
//! revokes its devices.

use std::sync::Arc;

use super::trips_tests::persistent;
use crate::clock::ManualClock;
use crate::persist::wal::WalOptions;

#[test]
fn tokens_open_their_devices_across_a_restart_and_revoked_ones_stay_revoked() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let engine = persistent(clock.clone());
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("opens");
    // A millisecond apart, so that "oldest first" is one order.
    let (_, phone, phone_token) = engine.create_device("ann", "phone").expect("made");
    clock.advance(1);
    let (_, _, revoked_token) = engine.create_device("ann", "old phone").expect("made");
    clock.advance(1);
    let (_, old, _) = engine.create_device("bob", "watch").expect("made");
    clock.advance(1);
    engine.snapshot().expect("snapshot");
    // After the snapshot: in the log's tail only.
    let (_, _, tail_token) = engine.create_device("ann", "tablet").expect("made");
    let old_id = engine.open_device(&revoked_token).expect("opens").1;
    let removed = engine.revoke_device("ann", &old_id).expect("revoked");
    assert!(removed.wait().expect("durable").existed);
    assert!(
        !engine
            .revoke_device("ann", old.id())
            .expect("refused")
            .wait()
            .expect("durable")
            .existed,
        "another traveller's device is not ann's to revoke"
    );
    drop(engine);

    let engine = persistent(clock);
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("recovers");
    assert_eq!(
        engine.open_device(&phone_token),
        Some(("ann".into(), phone.id().into()))
    );
    assert!(engine.open_device(&tail_token).is_some());
    assert_eq!(engine.open_device(&revoked_token), None);
    let names: Vec<String> = engine
        .devices_of("ann")
        .iter()
        .map(|d| d.name().to_owned())
        .collect();
    assert_eq!(names, ["phone", "tablet"]);
    assert_eq!(engine.devices_of("bob").len(), 1);

    engine
        .delete_traveller("ann")
        .expect("deleted")
        .wait()
        .expect("durable");
    assert_eq!(
        engine.open_device(&phone_token),
        None,
        "gone with its traveller"
    );
    assert!(engine.devices_of("ann").is_empty());
    drop(engine);
    let engine = persistent(Arc::new(ManualClock::new(1_000_000)));
    engine
        .recover(dir.path(), WalOptions::default())
        .expect("recovers");
    assert_eq!(
        engine.open_device(&phone_token),
        None,
        "still gone after the delete is replayed"
    );
    assert_eq!(engine.devices_of("bob").len(), 1);
}
