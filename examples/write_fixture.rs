//! Writes the data directories that `format_version_N_fixture_still_recovers` (in
//! `tests/it/durability.rs`) read: a snapshot holding two POIs' first, a traveller and a
//! static fence, then in the log only a POI, a move, a sharing change and a roaming fence
//! (version 2 on; `tests/fixtures/v1` was written before fences had owners and holds
//! neither fence, nor the log's fourth record). From version 4 on, the snapshot also holds
//! a trip with a follower and a share link, and a device, and the log a second device and
//! the first one's revocation; the tokens are written beside the data, in `tokens.txt`
//! (`link <token>`, `device <token>` a line), for the test to try. From version 5 on, the
//! snapshot also holds a privacy zone (`home`, around the traveller's first position),
//! and the log a second zone (`work`, around its second) and three points imported into
//! the trip. Run it once, when a new on-disk format
//! version is introduced, into a new folder under `tests/fixtures/`, and add a test like
//! those for the new version:
//!
//! `cargo run --example write_fixture -- tests/fixtures/v4`
//!
//! It refuses a folder that already holds anything: a checked-in fixture is never
//! rewritten.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proxima::clock::ManualClock;
use proxima::engine::{Engine, EngineConfig, LiveConfig};
use proxima::fences::{Fence, FenceKind};
use proxima::geometry::LatLon;
use proxima::geometry::area::Area;
use proxima::persist::wal::WalOptions;
use proxima::pois::{CursorKey, Poi};
use proxima::routes::RoutePoint;
use proxima::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};
use proxima::trips::Trip;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: cargo run --example write_fixture -- DIR");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        eprintln!(
            "{} is not empty; a fixture is never rewritten",
            dir.display()
        );
        std::process::exit(1);
    }
    let now = 1_800_000_000_000;
    let engine = Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock: Arc::new(ManualClock::new(now)),
        travellers: TravellerConfig {
            trail_capacity: 32,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    });
    engine
        .recover(dir, WalOptions::default())
        .expect("fresh dir");
    let tags = BTreeMap::from([("cuisine".to_string(), "coffee".to_string())]);
    let cafe = Poi::new(
        "fixture-cafe".into(),
        60.17,
        24.94,
        "Café".into(),
        "cafe".into(),
        tags,
        Some(4.5),
    )
    .expect("valid");
    engine
        .upsert_poi(cafe)
        .expect("upsert")
        .wait()
        .expect("durable");
    let first = PositionUpdate::new(
        "fixture-traveller".into(),
        60.1,
        24.9,
        now - 1000,
        Some(5.0),
        Some("trip".into()),
    )
    .expect("valid");
    engine
        .update_positions(vec![first])
        .expect("update")
        .wait()
        .expect("durable");
    let home = Area::circle(
        LatLon {
            lat: 60.1,
            lon: 24.9,
        },
        500.0,
    )
    .expect("valid");
    let fence = Fence::new(
        "home".into(),
        "key:0123456789abcdef".into(),
        Some("mum".into()),
        FenceKind::Static(home),
    )
    .expect("valid");
    engine
        .put_fence(fence, false)
        .expect("put")
        .wait()
        .expect("durable");
    let trip = Trip::new(
        "fixture-trip".into(),
        "fixture-traveller".into(),
        "Fixture trip".into(),
        now - 3_600_000,
        None,
    )
    .expect("valid");
    engine.put_trip(trip).expect("put").wait().expect("durable");
    engine
        .add_follower("fixture-trip", "mum")
        .expect("follow")
        .wait()
        .expect("durable");
    let (written, _, link) = engine
        .create_link("fixture-trip", now + 365 * 86_400_000, None, None)
        .expect("link");
    written.wait().expect("durable");
    let (written, revoked, revoked_token) = engine
        .create_device("fixture-traveller", "old phone")
        .expect("device");
    written.wait().expect("durable");
    let zone = |lat: f64, lon: f64| Area::circle(LatLon { lat, lon }, 300.0).expect("valid");
    engine
        .put_privacy_zone("fixture-traveller", "home", zone(60.1, 24.9))
        .expect("zone")
        .wait()
        .expect("durable");
    engine.snapshot().expect("snapshot");
    // After the snapshot: six records only in the log.
    let museum = Poi::new(
        "fixture-museum".into(),
        60.18,
        24.95,
        "Museum".into(),
        "museum".into(),
        BTreeMap::new(),
        None,
    )
    .expect("valid");
    engine
        .upsert_poi(museum)
        .expect("upsert")
        .wait()
        .expect("durable");
    let second = PositionUpdate::new("fixture-traveller".into(), 60.2, 24.9, now, None, None)
        .expect("valid");
    engine
        .update_positions(vec![second])
        .expect("update")
        .wait()
        .expect("durable");
    let sharing = Sharing::new(Visibility::Friends, vec!["mum".into()]).expect("valid");
    engine
        .set_sharing("fixture-traveller", sharing)
        .expect("share")
        .wait()
        .expect("durable");
    let near = Fence::new(
        "near-them".into(),
        "traveller:mum".into(),
        Some("mum".into()),
        FenceKind::Roaming {
            around: "fixture-traveller".into(),
            radius_m: 1000.0,
        },
    )
    .expect("valid");
    engine
        .put_fence(near, false)
        .expect("put")
        .wait()
        .expect("durable");
    let (written, _, device) = engine
        .create_device("fixture-traveller", "phone")
        .expect("device");
    written.wait().expect("durable");
    engine
        .revoke_device("fixture-traveller", revoked.id())
        .expect("revoke")
        .wait()
        .expect("durable");
    engine
        .put_privacy_zone("fixture-traveller", "work", zone(60.2, 24.9))
        .expect("zone")
        .wait()
        .expect("durable");
    let imported = (1..=3)
        .map(|i| RoutePoint {
            ts: now - 3_000_000 + i,
            lat: 60.15,
            lon: 24.8 + i as f64 * 1e-3,
        })
        .collect();
    let (written, _) = engine
        .import_track_points("fixture-trip", imported)
        .expect("import");
    written.wait().expect("durable");
    drop(engine);
    std::fs::remove_file(dir.join("LOCK")).expect("remove the lock file");
    std::fs::write(
        dir.join("tokens.txt"),
        format!("link {link}\ndevice {device}\nrevoked {revoked_token}\n"),
    )
    .expect("tokens written");
    println!("wrote the fixture to {}", dir.display());
}
