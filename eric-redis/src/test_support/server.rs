//! A private `redis-server` for [`TestRedis`](super::TestRedis).
//!
//! The server is an actor: one task owns the child process (it alone
//! signals and reaps it, so a pid is never signalled after reuse) and
//! publishes its exit in a `watch` cell; two more tasks drain its stdout and
//! stderr into a bounded [`LogTail`], printed when a test panics. Nothing
//! sleeps: readiness is the server's own `Ready to accept connections` log
//! line, and a stop is the reaped exit.
//!
//! A server whose runtime shuts down before its owning task reaps it is
//! killed by `kill_on_drop`; once the test binary exits, init reaps it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};

/// Longest wait for a server to become ready or to exit.
pub(super) const DEADLINE: Duration = Duration::from_secs(10);

/// Server log lines kept for a failing test's report.
const LOG_LINES: usize = 400;

/// Launch attempts before giving up (another process may take the free port
/// between our probe and the server's bind).
const LAUNCH_ATTEMPTS: usize = 3;

/// What a private server prints once it serves clients.
const READY_LINE: &str = "Ready to accept connections";

/// How to run a private server, beyond its port and directory.
#[derive(Debug, Clone, Default)]
pub(super) struct Options {
    /// AOF on, every write flushed before the answer.
    pub(super) durable: bool,
    /// A configuration file's text, written into the server's directory and
    /// given first (a sentinel needs a file it can rewrite).
    pub(super) config: Option<String>,
    /// Further arguments (`--cluster-enabled yes`, `--replicaof h p`,
    /// `--sentinel`).
    pub(super) args: Vec<String>,
    /// What it logs once it serves, if not [`READY_LINE`] (a sentinel says
    /// `+monitor master` instead).
    pub(super) ready: Option<&'static str>,
}

/// A private `redis-server` and what it keeps across restarts.
pub(super) struct LocalServer {
    bin: OsString,
    pub(super) port: u16,
    pub(super) durable: bool,
    options: Options,
    /// Its `--dir`: the AOF lives here across a stop, and goes with us.
    pub(super) dir: TempDir,
    /// Lines of every incarnation, for a failing test's report.
    log: LogTail,
    /// `None` while stopped.
    pub(super) process: Option<Process>,
}

impl LocalServer {
    /// Launches a server on a free port; `Err` only when the binary cannot
    /// be spawned at all (the caller then tries the next source). Other
    /// failures panic with the log, since falling back would hide them.
    pub(super) async fn start(durable: bool) -> io::Result<Self> {
        Self::start_with(Options {
            durable,
            ..Options::default()
        })
        .await
    }

    /// Same, with `options`.
    pub(super) async fn start_with(options: Options) -> io::Result<Self> {
        let bin = std::env::var_os("REDIS_SERVER_BIN").unwrap_or_else(|| "redis-server".into());
        let dir = tempfile::Builder::new().prefix("eric-redis-").tempdir()?;
        let log = LogTail::default();
        let mut failures = Vec::new();
        for _ in 0..LAUNCH_ATTEMPTS {
            let port = free_port()?;
            match launch(&bin, port, dir.path(), &options, &log).await {
                Ok(process) => {
                    return Ok(Self {
                        bin,
                        port,
                        durable: options.durable,
                        options,
                        dir,
                        log,
                        process: Some(process),
                    });
                }
                Err(Launch::Spawn(e)) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot run {}: {e}", bin.to_string_lossy()),
                    ));
                }
                // Most likely the port was taken meanwhile: try another.
                Err(Launch::Exited(status)) => failures.push(format!("port {port}: {status}")),
                Err(Launch::NotReady) => {
                    panic!(
                        "redis-server on port {port} was not ready within {DEADLINE:?}; log:\n{}",
                        log.dump()
                    )
                }
            }
        }
        panic!(
            "redis-server exited before becoming ready {LAUNCH_ATTEMPTS} times ({}); log:\n{}",
            failures.join(", "),
            log.dump()
        );
    }

    /// SIGTERM, then waits for the exit (SIGKILL if it takes too long).
    pub(super) async fn stop(&mut self) {
        let Some(Process { signals, mut exit }) = self.process.take() else {
            return;
        };
        if signals.send(Signal::Terminate).await.is_ok()
            && tokio::time::timeout(DEADLINE, exited(&mut exit))
                .await
                .is_ok()
        {
            return;
        }
        // Dropping the handle asks for SIGKILL.
        drop(signals);
        if tokio::time::timeout(DEADLINE, exited(&mut exit))
            .await
            .is_err()
        {
            panic!(
                "redis-server on port {} did not exit; log:\n{}",
                self.port,
                self.log.dump()
            );
        }
    }

    /// SIGKILL, as a crash: nothing is flushed. Waits for the exit.
    pub(super) async fn kill(&mut self) {
        let Some(Process { signals, mut exit }) = self.process.take() else {
            return;
        };
        // Dropping the handle asks for SIGKILL.
        drop(signals);
        if tokio::time::timeout(DEADLINE, exited(&mut exit))
            .await
            .is_err()
        {
            panic!(
                "redis-server on port {} did not die; log:\n{}",
                self.port,
                self.log.dump()
            );
        }
    }

    /// Waits until the server has logged `count` lines containing `needle`
    /// (since it first started).
    ///
    /// # Panics
    ///
    /// After `deadline`, with the log.
    pub(super) async fn logged(&self, needle: &str, count: usize, deadline: Duration) {
        if tokio::time::timeout(deadline, self.log.wait_for(needle, count))
            .await
            .is_err()
        {
            panic!(
                "redis-server on port {} did not log {needle:?} {count} times within \
                 {deadline:?}; log:\n{}",
                self.port,
                self.log.dump()
            );
        }
    }

    /// The last lines it logged.
    pub(super) fn log(&self) -> String {
        self.log.dump()
    }

    /// Relaunches on the same port and directory.
    pub(super) async fn start_again(&mut self) {
        if self.process.is_some() {
            return;
        }
        let launched = launch(
            &self.bin,
            self.port,
            self.dir.path(),
            &self.options,
            &self.log,
        );
        match launched.await {
            Ok(process) => self.process = Some(process),
            Err(e) => panic!(
                "redis-server did not restart on port {}: {e}; log:\n{}",
                self.port,
                self.log.dump()
            ),
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // Dropping the handle makes the owning task kill and reap the child;
        // were that task gone with its runtime, `kill_on_drop` kills it.
        self.process = None;
        if std::thread::panicking() {
            // The test harness captures this and shows it with the failure.
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "---- redis-server log (port {}, last {LOG_LINES} lines) ----\n{}\n---- end of redis-server log ----",
                    self.port,
                    self.log.dump().trim_end()
                );
            }
        }
    }
}

/// A free TCP port on the loopback (free now; the server binds it later).
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Why a launch failed.
#[derive(Debug)]
enum Launch {
    /// The binary could not be run.
    Spawn(io::Error),
    /// It exited before it was ready.
    Exited(String),
    /// It said nothing within the deadline.
    NotReady,
}

impl fmt::Display for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn(e) => write!(f, "cannot run it: {e}"),
            Self::Exited(status) => write!(f, "it exited before becoming ready ({status})"),
            Self::NotReady => write!(f, "it was not ready within {DEADLINE:?}"),
        }
    }
}

/// Spawns `redis-server` and waits for its ready line.
async fn launch(
    bin: &OsString,
    port: u16,
    dir: &Path,
    options: &Options,
    log: &LogTail,
) -> Result<Process, Launch> {
    let durable = options.durable;
    let mut command = Command::new(bin);
    if let Some(config) = &options.config {
        let file = dir.join("redis.conf");
        std::fs::write(&file, config).map_err(Launch::Spawn)?;
        command.arg(file);
    }
    command
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--logfile", ""])
        .arg("--dir")
        .arg(dir)
        .args(["--appendonly", if durable { "yes" } else { "no" }]);
    if durable {
        command.args(["--appendfsync", "always"]);
    }
    command.args(&options.args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(Launch::Spawn)?;
    let (ready_tx, ready_rx) = oneshot::channel();
    if let Some(stdout) = child.stdout.take() {
        let ready = (options.ready.unwrap_or(READY_LINE), ready_tx);
        tokio::spawn(drain(stdout, log.clone(), "", Some(ready)));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(drain(stderr, log.clone(), "stderr: ", None));
    }
    let process = Process::supervise(child, log.clone());
    match tokio::time::timeout(DEADLINE, ready_rx).await {
        Ok(Ok(())) => Ok(process),
        // Stdout closed before the ready line: the server is exiting.
        Ok(Err(_)) => {
            let Process { mut exit, .. } = process;
            let status = match tokio::time::timeout(DEADLINE, exited(&mut exit)).await {
                Ok(status) => status,
                Err(_) => "closed its output but did not exit".to_owned(),
            };
            Err(Launch::Exited(status))
        }
        Err(_) => Err(Launch::NotReady),
    }
}

/// Copies `output` line by line into `log`, telling `ready` when the server
/// prints its line saying it serves clients. Reads to the end, so the pipe
/// never fills.
async fn drain(
    output: impl AsyncRead + Unpin,
    log: LogTail,
    tag: &'static str,
    mut ready: Option<(&'static str, oneshot::Sender<()>)>,
) {
    let mut reader = BufReader::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if ready.as_ref().is_some_and(|(line, _)| text.contains(line))
                    && let Some((_, ready)) = ready.take()
                {
                    let _ = ready.send(());
                }
                log.push(format!("{tag}{text}"));
            }
            Err(e) => {
                log.push(format!("{tag}<unreadable: {e}>"));
                return;
            }
        }
    }
}

/// What the owning task is asked to do to the child.
#[derive(Debug, Clone, Copy)]
enum Signal {
    /// SIGTERM: Redis flushes its AOF and exits.
    Terminate,
}

/// The handle of a running server's owning task.
pub(super) struct Process {
    /// Requests to the owning task; dropping it means "kill and reap".
    signals: mpsc::Sender<Signal>,
    /// The exit status, once the child is reaped.
    pub(super) exit: watch::Receiver<Option<String>>,
}

impl Process {
    /// Hands `child` to a task that signals it on request, kills it when
    /// the handle goes, and publishes its exit.
    fn supervise(mut child: Child, log: LogTail) -> Self {
        let (signals, mut requests) = mpsc::channel(1);
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    request = requests.recv() => match request {
                        Some(Signal::Terminate) => terminate(&mut child, &log).await,
                        None => {
                            let _ = child.start_kill();
                            break child.wait().await;
                        }
                    },
                }
            };
            let status = describe(status);
            log.push(format!("[test-support] redis-server {status}"));
            exit_tx.send_replace(Some(status));
        });
        Self { signals, exit }
    }
}

/// Waits until the child behind `exit` is reaped; returns how it ended.
async fn exited(exit: &mut watch::Receiver<Option<String>>) -> String {
    match exit.wait_for(Option::is_some).await {
        Ok(status) => status.clone().unwrap_or_default(),
        // The owning task went with its runtime, killing the child on drop.
        Err(_) => "killed with its runtime".to_owned(),
    }
}

/// Sends SIGTERM with `kill(1)` (no `unsafe` for `kill(2)` here). The child
/// is not reaped yet, so its pid is still its own. If that fails, SIGKILL:
/// with `--appendfsync always` even that loses no acknowledged write.
async fn terminate(child: &mut Child, log: &LogTail) {
    let Some(pid) = child.id() else {
        return;
    };
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .await;
    if !matches!(sent, Ok(status) if status.success()) {
        log.push(format!(
            "[test-support] kill -TERM {pid} failed ({sent:?}); sending SIGKILL"
        ));
        let _ = child.start_kill();
    }
}

fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => format!("exited: {status}"),
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// The last [`LOG_LINES`] lines a server printed, shared with the tasks
/// draining its output, and how many lines it printed in all (a `watch`
/// cell, so a test can await a line). The lock is held for one push or
/// copy, never across an `.await`.
#[derive(Clone)]
struct LogTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    pushed: watch::Sender<u64>,
    /// Lines searched for, with how many printed so far contained them
    /// (counted as lines arrive, so a match older than the kept tail counts).
    counts: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Default for LogTail {
    fn default() -> Self {
        Self {
            lines: Arc::default(),
            pushed: watch::Sender::new(0),
            counts: Arc::default(),
        }
    }
}

impl LogTail {
    // A push or copy cannot leave the buffer half-changed: poison is harmless.
    fn lines(&self) -> MutexGuard<'_, VecDeque<String>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counts(&self) -> MutexGuard<'_, Vec<(String, usize)>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    // Both locks are taken counts first, so a line is counted either in
    // `wait_for`'s first count or as it arrives, never both or neither.
    fn push(&self, line: String) {
        {
            let mut counts = self.counts();
            for (needle, count) in counts.iter_mut() {
                if line.contains(needle.as_str()) {
                    *count += 1;
                }
            }
            let mut lines = self.lines();
            if lines.len() == LOG_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
        self.pushed.send_modify(|n| *n += 1);
    }

    /// Waits until `count` lines containing `needle` were printed.
    async fn wait_for(&self, needle: &str, count: usize) {
        let mut pushed = self.pushed.subscribe();
        {
            // Counted from the lines still kept, then as they arrive.
            let mut counts = self.counts();
            if !counts.iter().any(|(n, _)| n == needle) {
                let kept = self.lines().iter().filter(|l| l.contains(needle)).count();
                counts.push((needle.to_owned(), kept));
            }
        }
        loop {
            let seen = self
                .counts()
                .iter()
                .find(|(n, _)| n == needle)
                .map_or(0, |(_, c)| *c);
            if seen >= count {
                return;
            }
            if pushed.changed().await.is_err() {
                return;
            }
        }
    }

    fn dump(&self) -> String {
        let lines = self.lines();
        let mut out = String::new();
        for line in lines.iter() {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}
