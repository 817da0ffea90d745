//! The benchmark harness, briefly, against a real server: every workload runs, the reports
//! have the documented shape, and nothing fails.

use proxima_bench::args::BenchConfig;
use proxima_bench::workload::ALL;

use crate::common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_for_a_second_without_errors() {
    let s = TestServer::start_with(|c| c.traveller_ttl = 31_536_000).await;
    let config = BenchConfig {
        target: format!("http://{}", s.addr),
        workload: ALL.to_vec(),
        connections: 2,
        duration: 1.0,
        warmup: 0.2,
        rate: None,
        batch: 50,
        load_pois: 2_000,
        load_travellers: 2_000,
        load_trail: 1,
        roaming_every: 10,
        travellers: 2_000,
        fences: 200,
        subscribers: 2,
        keep_fences: false,
        radius_m: 50_000.0,
        k: 10,
        centre: None,
        seed: 7,
        distribution: proxima_bench::data::Distribution::SqrtPopulation,
        fields: Some("id,distance_m".into()),
        walk: false,
        key: None,
        json: true,
    };
    let reports = proxima_bench::run(&config, |_| {})
        .await
        .expect("the benchmark runs");
    assert_eq!(reports.len(), ALL.len());
    for r in &reports {
        let json = serde_json::to_value(r).expect("serializes");
        for field in [
            "workload",
            "connections",
            "duration_s",
            "ops",
            "throughput_per_s",
            "latency_us",
            "errors",
        ] {
            assert!(json.get(field).is_some(), "{}: {field}", r.workload);
        }
        assert_eq!(r.errors, 0, "{} had errors", r.workload);
        assert!(
            r.ops > 0 && r.throughput_per_s > 0.0,
            "{} did work",
            r.workload
        );
        assert!(r.latency_us.p50 <= r.latency_us.p99 && r.latency_us.p99 <= r.latency_us.max);
    }
    assert!(s.state.engine.poi_count() >= 2_000, "the POIs were loaded");
    let mixed = reports
        .iter()
        .find(|r| r.workload == "mixed")
        .expect("mixed ran");
    assert!(mixed.query_latency_us.is_some());
    // The fence workloads: their fences put, followed, and taken away again; their rate as a
    // share of the plain positions run before them.
    for (name, fences) in [("fences", 200), ("roaming", 200)] {
        let r = reports.iter().find(|r| r.workload == name).expect("ran");
        let events = r.events.as_ref().expect("an events report");
        assert_eq!((events.fences, events.followed), (fences, fences), "{name}");
        assert!(r.vs_positions.is_some_and(|v| v > 0.0), "{name}");
        assert!(events.matched <= events.received);
    }
    // Friends laid out within a kilometre, moving about 100 m, with 500 m fences: some of
    // them cross, and their events arrive timed.
    let roaming = reports
        .iter()
        .find(|r| r.workload == "roaming")
        .expect("ran");
    let events = roaming.events.as_ref().expect("events");
    assert!(
        events.received > 0 && events.latency_us.is_some(),
        "{events:?}"
    );
    let (from_ack, from_send) = (
        events.latency_us.expect("timed"),
        events.latency_from_send_us.expect("timed"),
    );
    assert!(
        from_send.p99 >= from_ack.p99,
        "a send comes before its acknowledgement"
    );
    assert_eq!(s.state.engine.fence_counts().fences, 0, "taken down");
    // The trip workloads: a trip for every traveller, their points on disk, followers
    // streaming, and the rate as a share of the plain positions run.
    let trips = reports.iter().find(|r| r.workload == "trips").expect("ran");
    assert!(trips.vs_positions.is_some_and(|v| v > 0.0));
    assert!(trips.vs_late_positions.is_some_and(|v| v > 0.0));
    let stage = trips.trips.as_ref().expect("a trips report");
    assert_eq!((stage.trips, stage.follower_streams), (2_000, 2));
    assert_eq!(s.state.engine.trip_count(), 2_000);
    let stored: u64 = (0..2_000)
        .map(|i| {
            s.state
                .engine
                .trip_figures(&format!("bench:trip:{i}"))
                .expect("reads")
                .points
        })
        .sum();
    assert!(
        stored as f64 >= trips.updates_per_s.expect("a rate") * 0.5,
        "the trips' points are on disk: {stored}"
    );
    let routes = reports
        .iter()
        .find(|r| r.workload == "routes")
        .expect("ran");
    assert!(routes.trips.is_some());
    // Open loop at a fixed rate never sends more than the rate schedules: 200 a second for
    // the measured second, one more per connection at the edges. (How many fewer a slow
    // machine manages is not the harness's promise, so no lower bound beyond "some".)
    let open = BenchConfig {
        workload: vec!["healthz".parse().expect("a workload")],
        rate: Some(200.0),
        load_pois: 0,
        load_travellers: 0,
        load_trail: 1,
        roaming_every: 10,
        ..config
    };
    let reports = proxima_bench::run(&open, |_| {}).await.expect("runs");
    let ops = reports[0].ops;
    assert!(
        (1..=202).contains(&ops),
        "at most the 200 requests scheduled in 1 s at 200/s, got {ops}"
    );
    assert_eq!(reports[0].duration_s, 1.0, "the measured window");
}
