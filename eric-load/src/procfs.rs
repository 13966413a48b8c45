//! A process's resident memory and CPU time, read from `/proc` (Linux).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Clock ticks per second when `getconf CLK_TCK` cannot say (the value on
/// every Linux architecture in use).
const DEFAULT_TICKS_PER_SECOND: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Resident set size (`VmRSS`), in KiB.
    pub(crate) rss_kib: u64,
    /// User plus system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
}

/// Reads `/proc/{pid}` for a process's memory and CPU time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Process {
    pid: u32,
    ticks_per_second: u64,
}

impl Process {
    /// The process `pid`; fails now if it cannot be read.
    pub(crate) async fn open(pid: u32) -> Result<Self> {
        let process = Self {
            pid,
            ticks_per_second: ticks_per_second().await,
        };
        process.sample().await?;
        Ok(process)
    }

    /// Reads the process's current RSS and CPU time.
    pub(crate) async fn sample(&self) -> Result<Sample> {
        let status = self.read("status").await?;
        let stat = self.read("stat").await?;
        Ok(Sample {
            rss_kib: parse_kib(&status, "VmRSS:")
                .ok_or_else(|| self.malformed("status", "no VmRSS line"))?,
            cpu_ticks: parse_cpu_ticks(&stat)
                .ok_or_else(|| self.malformed("stat", "no utime and stime"))?,
        })
    }

    /// Proportional set size (`Pss` in `smaps_rollup`), in KiB: each page
    /// shared by several processes (nginx's workers and its shared memory
    /// zone) counts a share in each, so a group's figures add up where
    /// their RSS would count shared pages once per process.
    pub(crate) async fn pss_kib(&self) -> Result<u64> {
        let rollup = self.read("smaps_rollup").await?;
        parse_kib(&rollup, "Pss:").ok_or_else(|| self.malformed("smaps_rollup", "no Pss line"))
    }

    /// CPU time between two samples.
    pub(crate) fn cpu_time(&self, before: &Sample, after: &Sample) -> Duration {
        let ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks);
        Duration::from_secs_f64(ticks as f64 / self.ticks_per_second as f64)
    }

    async fn read(&self, file: &str) -> Result<String> {
        let path = self.path(file);
        tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| Error::Proc { path, source })
    }

    fn path(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.pid))
    }

    fn malformed(&self, file: &str, reason: &'static str) -> Error {
        Error::ProcFormat {
            path: self.path(file),
            reason,
        }
    }
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` once (the crate forbids the
/// `unsafe` a direct call needs).
async fn ticks_per_second() -> u64 {
    let output = tokio::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .await;
    output
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(DEFAULT_TICKS_PER_SECOND)
}

/// `VmRSS:   12345 kB` from `/proc/PID/status` (`key` `VmRSS:`), or
/// `Pss:` from `smaps_rollup`.
fn parse_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` from `/proc/PID/stat` (fields 14 and 15, counted after
/// the command name, which may hold spaces and parentheses).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let status = "Name:\teric\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_kib(status, "VmRSS:"), Some(12_345));
        assert_eq!(parse_kib("Name: x\n", "VmRSS:"), None);
        let rollup = "00400000-7ffd [rollup]\nRss:   900 kB\nPss:   612 kB\nPss_Anon:  500 kB\n";
        assert_eq!(parse_kib(rollup, "Pss:"), Some(612));
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(175));
        assert_eq!(parse_cpu_ticks("4242 (eric) S 1"), None);
    }

    #[tokio::test]
    async fn samples_this_process() {
        let process = Process::open(std::process::id()).await.unwrap();
        let first = process.sample().await.unwrap();
        assert!(first.rss_kib > 0);
        assert!(process.pss_kib().await.unwrap() > 0);
        let later = process.sample().await.unwrap();
        assert!(process.cpu_time(&first, &later) >= Duration::ZERO);
        assert!(Process::open(u32::MAX).await.is_err());
    }
}
