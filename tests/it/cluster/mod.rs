//! Cluster mode against real `nats-server` processes that the tests start on loopback
//! ports: nodes converge, reads wait for a sequence, and NATS going away and coming back.
//!
//! Without `nats-server` on the `PATH` the tests print that they were skipped, unless
//! `PROXIMA_REQUIRE_NATS=1` (set by `.ci/run`), which makes that a failure.

mod bad_night;
mod convergence;
mod events;
mod faults;
mod processes;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestServer, free_port};

/// A `nats-server` with JetStream on a loopback port, its store in a temporary directory;
/// killed when dropped.
pub struct Nats {
    program: std::path::PathBuf,
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
    /// `--name`, `--cluster_name`, `--cluster` and `--routes` for a member of a cluster.
    cluster_args: Vec<String>,
}

/// Tries to start a `nats-server` (or a cluster of them) this many times, on fresh ports
/// each time: a port found free is released before the server binds it, and a test running
/// beside may take it meanwhile (two cluster tests once failed together so).
const ATTEMPTS: usize = 5;

impl Nats {
    /// Starts one, or `None` (the test is skipped) when there is no `nats-server`.
    pub fn start(test: &str) -> Option<Self> {
        let program = Self::program(test)?;
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Self::launch(program.clone(), |_| Vec::new()) {
                Ok(nats) => return Some(nats),
                Err(e) => last = e,
            }
        }
        panic!("nats-server did not start in {ATTEMPTS} attempts: {last}");
    }

    /// The `nats-server` program, or `None` (skipped).
    fn program(test: &str) -> Option<std::path::PathBuf> {
        crate::common::outside_program(
            test,
            "nats-server",
            "PROXIMA_REQUIRE_NATS",
            "apt-get install nats-server",
        )
    }

    /// Starts one on a free port with the extra arguments `args(port)` gives.
    fn launch(
        program: std::path::PathBuf,
        args: impl FnOnce(u16) -> Vec<String>,
    ) -> Result<Self, String> {
        let port = free_port();
        let mut nats = Self {
            program,
            child: None,
            port,
            store: tempfile::tempdir().expect("a store dir"),
            cluster_args: args(port),
        };
        nats.try_restart()?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The end of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.store.path().join("nats.log")).unwrap_or_default();
        // A killed peer's routes are retried every second: not news.
        let all: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("Error trying to connect to route"))
            .collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether it was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL): its clients see the connection drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, and waits until it listens.
    pub fn restart(&mut self) {
        if let Err(e) = self.try_restart() {
            panic!("{e}");
        }
    }

    /// [`Nats::restart`], or why the server did not listen: it ended (its port taken, say),
    /// or it did not listen within 20 s (it is then killed).
    fn try_restart(&mut self) -> Result<(), String> {
        self.kill();
        let child = Command::new(&self.program)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.cluster_args)
            .arg("-l")
            .arg(self.store.path().join("nats.log"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let ended = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = ended {
                self.child = None;
                return Err(format!(
                    "nats-server on port {} ended ({status}): {}",
                    self.port,
                    self.log_tail(5)
                ));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!("nats-server did not listen on port {}", self.port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three `nats-server`s forming one JetStream cluster on loopback ports, or `None`
/// (skipped).
pub fn nats_cluster(test: &str) -> Option<Vec<Nats>> {
    let program = Nats::program(test)?;
    let mut last = String::new();
    'attempt: for _ in 0..ATTEMPTS {
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let all = all.clone();
            let started = Nats::launch(program.clone(), |_| {
                vec![
                    "--name".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "proxima-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".into(),
                    all,
                ]
            });
            match started {
                Ok(server) => servers.push(server),
                Err(e) => {
                    // Those started are killed as they drop; all again on fresh ports.
                    last = e;
                    continue 'attempt;
                }
            }
        }
        return Some(servers);
    }
    panic!("a nats-server cluster did not start in {ATTEMPTS} attempts: {last}");
}

/// A Proxima node of cluster `name` on `nats`.
pub async fn node(nats: &Nats, name: &str) -> TestServer {
    let url = nats.url();
    let name = name.to_string();
    TestServer::start_with(move |c| {
        c.cluster = vec![url];
        c.cluster_name = name;
        c.max_wait = 2;
        c.max_lag = 1;
    })
    .await
}

/// The `x-proxima-seq` of a write's answer.
pub fn seq_of(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("x-proxima-seq")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no x-proxima-seq on {}", response.status()))
}
