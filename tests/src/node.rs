//! [`Node`]: one `eric serve` process on a free loopback port.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::within;

/// Log lines kept per node, shown when a test fails.
const LOG_LINES: usize = 200;

/// The `eric` binary the nodes run: `ERIC_BIN` when set, else `eric` in
/// this test's target directory. This crate cannot name the binary as a
/// dependency (cargo gives `CARGO_BIN_EXE_eric` only to the binary's own
/// package), so it relies on the workspace's test build: `cargo test
/// --workspace` builds `eric` for eric-bin's own integration tests before
/// any test runs. `cargo test -p eric-tests` alone would not rebuild it;
/// the README's test command is the workspace one.
pub fn eric_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate)
}

fn locate() -> PathBuf {
    if let Some(path) = std::env::var_os("ERIC_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/eric
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .join("eric");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (which builds it) \
         or point ERIC_BIN at an eric binary",
        path.display()
    );
    path
}

/// A running `eric serve` process.
#[derive(Debug)]
pub struct Node {
    /// The HTTP address it serves.
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Node {
    /// Starts a node on `redis_url` with key prefix `prefix`; `extra` adds
    /// `ERIC__...` settings. Returns once it logged that it serves.
    pub async fn start(redis_url: &str, prefix: &str, extra: &[(&str, &str)]) -> Self {
        let mut env = vec![
            ("ERIC__REDIS__PREFIX", prefix),
            ("ERIC__REDIS__COMMAND_TIMEOUT_MS", "2000"),
        ];
        env.extend_from_slice(extra);
        Self::spawn(&["--redis", redis_url], &env).await
    }

    /// Starts a node on the in-memory engine; `extra` adds `ERIC__...`
    /// settings.
    pub async fn start_memory(extra: &[(&str, &str)]) -> Self {
        Self::spawn(&["--memory"], extra).await
    }

    /// Starts a node on the disk engine in `dir` with fsync policy `fsync`
    /// (`always`, `everysec`, `no`).
    pub async fn start_disk(dir: &Path, fsync: &str) -> Self {
        let dir = dir.to_str().expect("a UTF-8 data directory");
        Self::spawn(&["--data-dir", dir, "--fsync", fsync], &[]).await
    }

    /// Runs `eric serve ARGS` expecting it to refuse to start: its exit
    /// status and everything it wrote to stderr, once it exited.
    ///
    /// # Panics
    ///
    /// When it has not exited within the deadline (it serves instead).
    pub async fn refused(args: &[&str]) -> (ExitStatus, String) {
        let output = within("eric serve to exit", serve(args, &[]).output())
            .await
            .expect("eric serve runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status, stderr)
    }

    async fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = serve(args, env).spawn().expect("eric serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (ready, addr) = oneshot::channel();
        tokio::spawn(read_log(stderr, log.clone(), ready));
        let addr = within("the node to serve", addr)
            .await
            .unwrap_or_else(|_| panic!("eric exited before serving; log:\n{}", dump(&log)));
        Self { addr, child, log }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the node is running")
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    pub async fn terminate(mut self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success());
        let exit = within("the node to exit", self.child.wait())
            .await
            .expect("wait");
        assert!(
            exit.success(),
            "eric exited with {exit}; log:\n{}",
            dump(&self.log)
        );
    }

    /// SIGKILL: a crash, with no chance to clean up.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = within("the node to die", self.child.wait()).await;
    }

    /// Its resident memory (`VmRSS`) in KiB, and the CPU time it used so
    /// far (user + system), from `/proc`.
    pub fn usage(&self) -> (u64, std::time::Duration) {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command (which may hold spaces): utime is the
        // 14th field of the line, stime the 15th, in clock ticks (100/s).
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|t| t.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        (rss, std::time::Duration::from_millis(ticks * 10))
    }

    /// The log lines kept so far.
    pub fn log(&self) -> String {
        dump(&self.log)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("---- eric node {} log ----\n{}", self.addr, dump(&self.log));
            }
        }
        let _ = self.child.start_kill();
    }
}

/// `eric serve` on a free loopback port, logging JSON at `info` to a piped
/// stderr, with `args` and the `env` settings; killed when dropped.
fn serve(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(eric_binary());
    command
        .args(["serve", "--http", "127.0.0.1:0", "--log-json"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn dump(log: &Mutex<VecDeque<String>>) -> String {
    let lines = log.lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Keeps the last log lines and reports the served address from the
/// `eric is serving` line.
async fn read_log(
    stderr: tokio::process::ChildStderr,
    log: Arc<Mutex<VecDeque<String>>>,
    ready: oneshot::Sender<SocketAddr>,
) {
    let mut ready = Some(ready);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if ready.is_some()
            && let Some(addr) = served_addr(&line)
        {
            let _ = ready.take().map(|r| r.send(addr));
        }
        let mut kept = log.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == LOG_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

fn served_addr(line: &str) -> Option<SocketAddr> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    if entry["fields"]["message"] != "eric is serving" {
        return None;
    }
    entry["fields"]["addr"].as_str()?.parse().ok()
}
