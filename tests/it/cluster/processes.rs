//! Faults with real processes: a Proxima node killed with SIGKILL during writes, and the
//! stream's leader among three `nats-server`s killed during writes. Nothing acknowledged
//! is lost, nothing is applied twice, and the nodes end with equal states.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Nats, nats_cluster};
use crate::process::{Proc, serve};

fn start_node(dir: &std::path::Path, urls: &str, name: &str, replicas: &str) -> Proc {
    serve(
        dir,
        &[
            "--no-sample",
            "--cluster",
            urls,
            "--cluster-name",
            name,
            "--cluster-replicas",
            replicas,
            "--max-wait",
            "3",
            "--max-lag",
            "2",
        ],
    )
    .expect("a node starts")
}

/// PUTs POI `id` on `base`: its sequence when acknowledged (200 or 201), else `None`.
async fn put(client: &reqwest::Client, base: &str, id: &str) -> Option<u64> {
    let body = json!({"lat": 45.0, "lon": 7.0, "name": id, "category": "cafe"});
    let response = client
        .put(format!("{base}/v1/pois/{id}"))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response
        .headers()
        .get("x-proxima-seq")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The state digest of the node at `base`, once it has applied `seq`.
async fn digest(client: &reqwest::Client, base: &str, seq: u64) -> (Value, Value) {
    let stats: Value = client
        .get(format!("{base}/v1/stats?digest=true&min_seq={seq}"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    (stats["digest"].clone(), stats["pois"].clone())
}

#[tokio::test]
async fn a_node_killed_during_writes_catches_up_and_nothing_acknowledged_is_lost() {
    let Some(nats) = Nats::start("a_node_killed_during_writes_catches_up") else {
        return;
    };
    let client = reqwest::Client::new();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let url = nats.url();
    let mut a = start_node(dirs[0].path(), &url, "kill9", "1");
    let mut b = start_node(dirs[1].path(), &url, "kill9", "1");
    a.ready(&client).await.expect("a ready");
    b.ready(&client).await.expect("b ready");
    let mut acknowledged = BTreeSet::new();
    let mut last = 0;
    for i in 0..60 {
        if i == 20 {
            a.signal_and_wait("-KILL");
        }
        let base = if i % 2 == 0 && i < 20 {
            &a.base
        } else {
            &b.base
        };
        let id = format!("p{i:03}");
        if let Some(seq) = put(&client, base, &id).await {
            acknowledged.insert(id);
            last = last.max(seq);
        }
    }
    assert_eq!(
        acknowledged.len(),
        60,
        "b kept taking writes while a was down"
    );
    let mut a = start_node(dirs[0].path(), &url, "kill9", "1");
    a.ready(&client).await.expect("a ready again");
    let (digest_a, pois_a) = digest(&client, &a.base, last).await;
    let (digest_b, _) = digest(&client, &b.base, last).await;
    assert_eq!(pois_a, 60);
    assert_eq!(digest_a, digest_b, "a caught up to b's state");
    for id in &acknowledged {
        let status = client
            .get(format!("{}/v1/pois/{id}", a.base))
            .send()
            .await
            .expect("sent")
            .status();
        assert_eq!(status, 200, "{id} was acknowledged");
    }
}

#[tokio::test]
async fn the_stream_leader_killed_during_writes_loses_and_repeats_nothing() {
    let Some(mut servers) = nats_cluster("the_stream_leader_killed_during_writes") else {
        return;
    };
    let urls = servers.iter().map(Nats::url).collect::<Vec<_>>().join(",");
    let client = reqwest::Client::new();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let mut a = start_node(dirs[0].path(), &urls, "leader", "3");
    let mut b = start_node(dirs[1].path(), &urls, "leader", "3");
    a.ready(&client).await.expect("a ready");
    b.ready(&client).await.expect("b ready");
    let nats = async_nats::connect(servers.iter().map(Nats::url).collect::<Vec<_>>())
        .await
        .expect("nats");
    let jetstream = async_nats::jetstream::new(nats);
    let mut stream = jetstream.get_stream("LEADER").await.expect("the stream");
    let leader = stream
        .info()
        .await
        .expect("info")
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("a leader");
    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    let mut last = 0;
    let started = Instant::now();
    let mut killed_at = None;
    let mut recovered_after = None;
    for i in 0..200 {
        if i == 50 {
            let index: usize = leader.trim_start_matches('n').parse().expect("n0..n2");
            servers[index].kill();
            killed_at = Some(Instant::now());
        }
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let id = format!("p{i:03}");
        match put(&client, base, &id).await {
            Some(seq) => {
                acknowledged.insert(id);
                last = last.max(seq);
                if let (Some(at), None) = (killed_at, recovered_after) {
                    recovered_after = Some(at.elapsed());
                }
            }
            None => refused += 1,
        }
        if i >= 50 && recovered_after.is_none() && started.elapsed() > Duration::from_secs(90) {
            panic!("writes did not resume after the leader was killed");
        }
    }
    eprintln!(
        "leader {leader} killed: {refused} writes refused, writes resumed {:?} after the kill",
        recovered_after
    );
    assert!(
        acknowledged.len() >= 150,
        "{} acknowledged",
        acknowledged.len()
    );
    let (digest_a, pois_a) = digest(&client, &a.base, last).await;
    let (digest_b, _) = digest(&client, &b.base, last).await;
    assert_eq!(digest_a, digest_b);
    let pois_a = pois_a.as_u64().expect("a count") as usize;
    assert!(
        pois_a >= acknowledged.len(),
        "every acknowledged write is applied"
    );
    for id in &acknowledged {
        let status = client
            .get(format!("{}/v1/pois/{id}", b.base))
            .send()
            .await
            .expect("sent")
            .status();
        assert_eq!(status, 200, "{id} was acknowledged");
    }
    // Nothing stored twice: every message id in the stream is distinct. Read through the
    // servers still up (the first client may have been on the one killed).
    let survivors = servers
        .iter()
        .filter(|s| s.is_running())
        .map(Nats::url)
        .collect::<Vec<_>>();
    let jetstream = async_nats::jetstream::new(async_nats::connect(survivors).await.expect("nats"));
    let mut stream = jetstream.get_stream("LEADER").await.expect("the stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("a consumer");
    let total = stream.info().await.expect("info").state.messages;
    let mut messages = consumer.messages().await.expect("messages");
    let mut ids = BTreeSet::new();
    for _ in 0..total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream is read within 10 s")
            .expect("a message")
            .expect("no error");
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_string())
            .expect("every record has a message id");
        assert!(ids.insert(id), "a message id stored twice");
    }
}
