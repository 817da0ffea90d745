//! Runs the real `proxima` binary as a child process, for tests that kill and restart it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `proxima serve`.
pub struct Proc {
    pub child: Child,
    pub base: String,
    /// Everything written to stderr so far, drained by a thread so the pipe never fills.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `proxima serve` on a free port over `data_dir` with extra flags; `Err` with its
/// stderr if the process exits before printing its address.
#[expect(
    clippy::zombie_processes,
    reason = "the child is waited for by Proc::drop or before returning Err"
)]
pub fn serve(data_dir: &Path, flags: &[&str]) -> Result<Proc, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxima"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(flags)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout");
    let Some(addr) = line.trim().strip_prefix("proxima listening on ") else {
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut err)
            .expect("read stderr");
        return Err(err);
    };
    let mut pipe = child.stderr.take().expect("piped stderr");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("not poisoned")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Ok(Proc {
        child,
        base: addr.to_string(),
        stderr,
    })
}

impl Proc {
    /// Waits until `/readyz` is 200 (bounded: 60 s), or the process exits (then `Err` with
    /// its stderr).
    pub async fn ready(&mut self, client: &reqwest::Client) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("exited with {status}: {}", self.stderr_text()));
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("not ready within 60 s".to_string())
    }

    /// Kills the process with `signal` (`-KILL`, `-TERM`) and waits for it (bounded: 30 s).
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the process has written to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::thread::sleep(Duration::from_millis(50)); // let the drain thread catch up
        self.stderr.lock().expect("not poisoned").clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
