//! The `process_*` metrics Prometheus's client libraries export under
//! these standard names, read from `/proc/self` at scrape time (Linux only:
//! elsewhere the collector writes nothing).
//!
//! Written here rather than taken from a crate: prometheus-client has no
//! process collector, and none on crates.io targets its 0.25 API. Nor is it
//! shared with eric-load's `procfs`, which reads another process by pid
//! (with `smaps_rollup`) into its own error type; the two readings have
//! only the `utime`/`stime` fields in common.

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Clock ticks per second of `/proc`'s CPU times: `USER_HZ`, which the
/// kernel fixes at 100 in what it shows user space on every architecture
/// (whatever its internal `HZ`), so asking `sysconf` is not needed.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Sample {
    cpu_seconds: f64,
    resident_bytes: i64,
    virtual_bytes: i64,
    open_fds: i64,
    max_fds: i64,
    start_time_seconds: f64,
}

impl Sample {
    /// Reads `/proc/self` (blocking file reads: call off the runtime's
    /// workers). `None` off Linux, or where `/proc` does not parse.
    pub(super) fn read() -> Option<Self> {
        // Elsewhere a `/proc` (FreeBSD's linprocfs) may look alike but
        // mean otherwise: the metrics are documented as Linux's.
        if !cfg!(target_os = "linux") {
            return None;
        }
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let fields = stat_fields(&stat)?;
        // Fields counted from `state` (the third of stat(5)).
        let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
        let cpu_ticks = ticks(11)? + ticks(12)?;
        let start_ticks = ticks(19)?;
        let boot_time = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<u64>()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?.0;
        Some(Self {
            cpu_seconds: cpu_ticks as f64 / TICKS_PER_SECOND,
            resident_bytes: kib(&status, "VmRSS:")?.saturating_mul(1024),
            virtual_bytes: kib(&status, "VmSize:")?.saturating_mul(1024),
            open_fds: i64::try_from(open_fds).unwrap_or(i64::MAX),
            max_fds: i64::try_from(max_fds).unwrap_or(i64::MAX),
            start_time_seconds: boot_time as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        })
    }
}

/// The fields of `/proc/PID/stat` after the command name, which is in
/// parentheses and may hold spaces and parentheses itself.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_ascii_whitespace().collect())
}

/// A `/proc/PID/status` line's value in KiB.
fn kib(status: &str, key: &str) -> Option<i64> {
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// The last [`Sample`], written out by the registry.
#[derive(Debug, Default)]
pub(super) struct ProcessCollector {
    sample: Mutex<Option<Sample>>,
}

impl ProcessCollector {
    pub(super) fn set(&self, sample: Option<Sample>) {
        *self.sample.lock().unwrap_or_else(|p| p.into_inner()) = sample;
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(s) = *self.sample.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        let e = encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent in seconds",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?;
        cpu.encode(e)?;
        let gauges = [
            (
                "process_resident_memory",
                "Resident memory size in bytes",
                Some(&Unit::Bytes),
                s.resident_bytes,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size in bytes",
                Some(&Unit::Bytes),
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                None,
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                s.max_fds,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(value);
            let e = encoder.encode_descriptor(name, help, unit, gauge.metric_type())?;
            gauge.encode(e)?;
        }
        let start = ConstGauge::new(s.start_time_seconds);
        let e = encoder.encode_descriptor(
            "process_start_time",
            "Start time of the process since unix epoch in seconds",
            Some(&Unit::Seconds),
            start.metric_type(),
        )?;
        start.encode(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command name with spaces and a parenthesis does not shift the
    /// fields.
    #[test]
    fn stat_fields_start_after_the_command_name() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 0";
        let fields = stat_fields(stat).expect("parses");
        assert_eq!(
            (fields[0], fields[11], fields[12], fields[19]),
            ("S", "7", "3", "500")
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads() {
        let s = Sample::read().expect("/proc/self reads");
        assert!(s.resident_bytes > 0 && s.open_fds > 0 && s.max_fds >= s.open_fds);
        assert!(s.start_time_seconds > 1.5e9);
    }
}
