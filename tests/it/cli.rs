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
