//! [`Cpu`]: the CPU time of given processes (`--cpu-pid`: a server's nodes,
//! its Redis) and of this tool over a throughput run's measured part, each
//! as a share of one core. On a machine with few cores the process near
//! 100 % is what limits the run, and the sum says whether the machine is
//! full; a reading around the whole command would also count opening the
//! streams, which is not what is measured.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::error::Result;
use crate::procfs::{Process, Sample};
use crate::report::Report;

/// Options of a throughput run: processes whose CPU use it reports.
#[derive(Debug, clap::Args)]
pub(crate) struct CpuArgs {
    /// Process ids whose CPU use over the measured part is reported, each
    /// apart, together with this tool's own (comma-separated or repeated;
    /// their `/proc` files are read, so they must run on this machine).
    #[arg(long = "cpu-pid", value_name = "PID", value_delimiter = ',')]
    pids: Vec<u32>,
}

/// The processes read, by the name they are reported under: `self` for
/// this tool, else the pid. Empty without `--cpu-pid`.
#[derive(Debug)]
pub(crate) struct Cpu(Vec<(String, Process)>);

/// One reading of every process of a [`Cpu`].
#[derive(Debug)]
pub(crate) struct CpuSample {
    at: Instant,
    samples: Vec<Sample>,
}

impl Cpu {
    /// Opens the processes of `args` and this one; fails now if one cannot
    /// be read, before the run sets anything up.
    pub(crate) async fn open(args: &CpuArgs) -> Result<Self> {
        let mut processes = Vec::with_capacity(args.pids.len() + 1);
        if !args.pids.is_empty() {
            processes.push(("self".to_owned(), Process::open(std::process::id()).await?));
        }
        for &pid in &args.pids {
            processes.push((pid.to_string(), Process::open(pid).await?));
        }
        Ok(Self(processes))
    }

    /// Reads every process's CPU time now.
    pub(crate) async fn sample(&self) -> Result<CpuSample> {
        let mut samples = Vec::with_capacity(self.0.len());
        for (_, process) in &self.0 {
            samples.push(process.sample().await?);
        }
        Ok(CpuSample {
            at: Instant::now(),
            samples,
        })
    }

    /// Adds `cpu_percent`: each process's CPU time between the two
    /// readings, in % of one core over the time between them (2 decimals),
    /// keyed `self` or by pid. Nothing without processes.
    pub(crate) fn report(&self, before: &CpuSample, after: &CpuSample, report: &mut Report) {
        if self.0.is_empty() {
            return;
        }
        let wall = after
            .at
            .duration_since(before.at)
            .max(Duration::from_micros(1));
        let mut figures = Map::new();
        let mut text = Vec::with_capacity(self.0.len());
        let readings = before.samples.iter().zip(&after.samples);
        for ((name, process), (b, a)) in self.0.iter().zip(readings) {
            let percent = process.cpu_time(b, a).as_secs_f64() / wall.as_secs_f64() * 100.0;
            let rounded = (percent * 100.0).round() / 100.0;
            figures.insert(name.clone(), Value::from(rounded));
            text.push(format!("{name} {percent:.1} %"));
        }
        report.add(
            "cpu_percent",
            figures,
            format!(
                "{} (of a core, over {:.3} s)",
                text.join(", "),
                wall.as_secs_f64()
            ),
        );
    }
}
