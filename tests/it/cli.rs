//! The `proxima serve` binary: prints the address it chose and stops cleanly on SIGTERM.

use crate::process;

#[test]
fn serve_prints_its_address_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = process::serve(dir.path(), &["--no-sample"]).expect("prints its address");
    let addr = server
        .base
        .strip_prefix("http://")
        .expect("an http address")
        .to_string();
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert_ne!(port, 0, "a real port was chosen");
    std::net::TcpStream::connect(&addr).expect("the server accepts connections");
    let asked = std::time::Instant::now();
    let exit = server.signal_and_wait("-TERM");
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "the server stopped within 10 s of SIGTERM"
    );
}

#[tokio::test]
async fn the_demo_moves_public_travellers_and_leaves_the_data_dir_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("real-data");
    let client = reqwest::Client::new();
    let mut server = process::serve(&data, &["--demo"]).expect("prints its address");
    server.ready(&client).await.expect("ready");
    // Public travellers near Helsinki, anyone may see them, and they move.
    let near = format!(
        "{}/v1/travellers/nearby?lat=60.1699&lon=24.9384&radius_m=20000&limit=100",
        server.base
    );
    let mut seen: Option<serde_json::Value> = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page: serde_json::Value = client
            .get(&near)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        let first = page["results"].as_array().and_then(|r| r.first()).cloned();
        match (&seen, first) {
            (Some(before), Some(now)) if before["id"] == now["id"] && before["ts"] != now["ts"] => {
                break;
            }
            (_, Some(now)) if seen.is_none() => seen = Some(now),
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no demo traveller moved near Helsinki: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(server.signal_and_wait("-TERM").success());
    assert!(!data.exists(), "the demo wrote nothing to --data-dir");
}
