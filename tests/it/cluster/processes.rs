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

/// PUTs POI `id` on `base`: its sequence when acknowledged (200 or 201), else why not.
async fn try_put(client: &reqwest::Client, base: &str, id: &str) -> Result<u64, String> {
    let body = json!({"lat": 45.0, "lon": 7.0, "name": id, "category": "cafe"});
    let response = client
        .put(format!("{base}/v1/pois/{id}"))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(response.text().await.unwrap_or_default());
    }
    response
        .headers()
        .get("x-proxima-seq")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no x-proxima-seq".to_string())
}

/// [`try_put`], its failure dropped.
async fn put(client: &reqwest::Client, base: &str, id: &str) -> Option<u64> {
    try_put(client, base, id).await.ok()
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
    // A healthy stream first: a leader and both other replicas current, so that losing the
    // leader leaves a quorum that can elect another (bounded: 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        let info = stream.info().await.expect("info").clone();
        let cluster = info.cluster.expect("a clustered stream");
        let healthy =
            cluster.replicas.len() == 2 && cluster.replicas.iter().all(|r| r.current && !r.offline);
        if let (true, Some(leader)) = (healthy, cluster.leader) {
            break leader;
        }
        assert!(
            Instant::now() < deadline,
            "the stream's replicas never all became current"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut acknowledged = BTreeSet::new();
    let mut last = 0;
    // 50 writes with every server up, all acknowledged.
    for i in 0..50 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let id = format!("p{i:03}");
        let seq = put(&client, base, &id).await.expect("acknowledged");
        acknowledged.insert(id);
        last = last.max(seq);
    }
    let index: usize = leader.trim_start_matches('n').parse().expect("n0..n2");
    servers[index].kill();
    let killed = Instant::now();
    // Then 100 more acknowledged, through the election (bounded: 120 s).
    let mut refused = 0;
    let mut last_refusal = String::new();
    let mut resumed_after = None;
    let mut i = 50;
    while acknowledged.len() < 150 {
        if killed.elapsed() > Duration::from_secs(120) {
            let tail = |text: String| text.lines().rev().take(40).collect::<Vec<_>>().join("\n");
            let servers_logs = servers
                .iter()
                .filter(|s| s.is_running())
                .map(|s| s.log_tail(25))
                .collect::<Vec<_>>()
                .join("\n----\n");
            panic!(
                "writes did not resume after the leader was killed ({refused} refused, the last: {last_refusal}); node a's log, newest first:\n{}\nnode b's:\n{}\nthe servers still up:\n{servers_logs}",
                tail(a.stderr_text()),
                tail(b.stderr_text())
            );
        }
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let id = format!("p{i:03}");
        match try_put(&client, base, &id).await {
            Ok(seq) => {
                acknowledged.insert(id);
                last = last.max(seq);
                resumed_after.get_or_insert(killed.elapsed());
            }
            Err(why) => {
                refused += 1;
                last_refusal = why;
            }
        }
        i += 1;
    }
    eprintln!(
        "leader {leader} killed: {refused} writes refused, writes resumed {resumed_after:?} after the kill"
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
    // Under load the first requests to the survivors may time out: retried, bounded.
    let mut consumer = None;
    for _ in 0..30 {
        match stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
        {
            Ok(created) => {
                consumer = Some(created);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    let consumer = consumer.expect("a consumer on the stream within 30 s");
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
