//! `eric load peer fanout`: N streams on one channel, M messages published
//! to it. The streams are all open before the first publish; the clock
//! runs from the first publish until the last stream has its M-th message.
//! Reported: deliveries/s (N × M over that time), the publish rate, and
//! end-to-end latency.
//!
//! With `--channels K`, the streams and the messages are spread over K
//! channels (`{k}` in the URLs): stream i reads channel i mod K, message m
//! goes to channel m mod K, and each stream waits for its channel's share.
//! With one stream per channel (N = K) that measures publishing: the
//! messages/s reported is every message delivered end to end, over many
//! channels (on a Redis Cluster, over its shards).

use std::time::{Duration, Instant};

use eric_client::CaCertificates;
use tokio_util::sync::CancellationToken;

use super::cpu::{Cpu, CpuArgs};
use super::publish::Publisher;
use super::reader::Reader;
use super::{Deliveries, STALL, Streams, Template, need_channel, now_micros, spread};
use crate::error::{Error, Result};
use crate::join_all;
use crate::report::Report;
use crate::stats::per_second;

/// Options of `eric load peer fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct FanoutArgs {
    /// URL every message is posted to (`{i}` stands for 0, `{k}` for the
    /// message's channel). Repeat it to spread the publishes over several
    /// nodes: message m goes to the (m mod U)-th of the U URLs (with
    /// `--channels K`, the ((m mod K + m div K) mod U)-th).
    #[arg(long = "publish-url", value_name = "URL", required = true)]
    publish_urls: Vec<Template>,
    #[command(flatten)]
    stream: Streams,
    /// Channels the streams and messages are spread over: stream i reads
    /// channel i mod K, message m goes to channel m mod K (`{k}` in every
    /// URL stands for the channel's number). At most `--streams`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    channels: u32,
    /// Streams, each on a connection of its own.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Messages published.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Publishes in flight at once (each on its own connection).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    publishers: u32,
    #[command(flatten)]
    cpu: CpuArgs,
}

impl FanoutArgs {
    /// Checks what clap cannot: several channels need `{k}` in every URL
    /// and a stream on each channel (else its messages go unread).
    fn check(&self) -> Result<()> {
        if self.channels == 1 {
            return Ok(());
        }
        need_channel("--publish-url", &self.publish_urls)?;
        need_channel("--stream-url", &self.stream.stream_urls)?;
        if self.streams < self.channels {
            return Err(Error::Usage {
                option: "--channels",
                reason: format!(
                    "{} channels but {} streams: a channel without a stream goes unread",
                    self.channels, self.streams
                ),
            });
        }
        Ok(())
    }

    /// The messages stream `i` is due: its channel's share of them.
    fn share(&self, i: u32) -> u64 {
        let channels = u64::from(self.channels);
        let k = u64::from(i) % channels;
        self.messages / channels + u64::from(k < self.messages % channels)
    }

    /// The URL message `m` is posted to.
    fn publish_url(&self, m: u64) -> String {
        let (k, turn) = spread(m, u64::from(self.channels), self.publish_urls.len());
        self.publish_urls[turn].url(0, k)
    }
}

/// Runs the measurement.
pub(crate) async fn run(args: FanoutArgs, ca: Option<&CaCertificates>) -> Result<Report> {
    args.check()?;
    let cpu = Cpu::open(&args.cpu).await?;
    let publisher = Publisher::new(&args.publish_urls, ca)?;
    let give_up = CancellationToken::new();
    let since = now_micros();
    let readers = (0..args.streams)
        .map(|i| Reader {
            url: args.stream.url(i, args.channels),
            expected: args.share(i),
            since,
            stall: STALL,
            delivered: None,
            give_up: give_up.clone(),
        })
        .collect();
    let readers = args.stream.open(readers, &give_up, ca).await?;
    let cpu_before = cpu.sample().await?;
    let began = Instant::now();
    let publishing = async {
        let urls = (0..args.messages).map(|m| args.publish_url(m));
        let published = publisher.publish_all(urls, args.publishers).await;
        if published.is_err() {
            give_up.cancel();
        }
        published.map(|()| began.elapsed())
    };
    let (published, received) = tokio::join!(publishing, join_all(readers));
    let publish_time = published?;
    let deliveries = Deliveries::merge(received?);
    let cpu_after = cpu.sample().await?;
    let elapsed = deliveries.last.map_or(Duration::ZERO, |last| last - began);
    let mut report = Report::new("peer fanout");
    report.count("streams", u64::from(args.streams));
    report.count("channels", u64::from(args.channels));
    report.count("messages", args.messages);
    report.rate(
        "publish_rate",
        per_second(args.messages, publish_time),
        "publishes/s accepted",
    );
    report.rate(
        "message_rate",
        per_second(args.messages, elapsed),
        "messages/s, first publish to last delivery",
    );
    deliveries.report(&mut report, elapsed);
    cpu.report(&cpu_before, &cpu_after, &mut report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        fanout: FanoutArgs,
    }

    fn parse(args: &[&str]) -> FanoutArgs {
        let line = ["fanout"].iter().chain(args);
        Command::try_parse_from(line).unwrap().fanout
    }

    #[test]
    fn each_stream_waits_for_its_channels_share() {
        let args = parse(&[
            "--publish-url=http://a/c{k}",
            "--publish-url=http://b/c{k}",
            "--stream-url=http://a/c{k}/s{i}",
            "--stream-url=http://b/c{k}/s{i}",
            "--streams=7",
            "--messages=10",
            "--channels=3",
        ]);
        args.check().unwrap();
        // Channels 0, 1, 2 get messages 0 3 6 9, 1 4 7, 2 5 8.
        let shares: Vec<u64> = (0..7).map(|i| args.share(i)).collect();
        assert_eq!(shares, [4, 3, 3, 4, 3, 3, 4]);
        let urls: Vec<String> = (0..4).map(|m| args.publish_url(m)).collect();
        assert_eq!(
            urls,
            ["http://a/c0", "http://b/c1", "http://a/c2", "http://b/c0"]
        );
        assert_eq!(args.stream.url(4, 3), "http://a/c1/s4");
    }

    #[test]
    fn several_channels_need_k_and_a_stream_each() {
        let mut args = parse(&["--publish-url=http://a/c", "--stream-url=http://a/c"]);
        args.check().unwrap();
        assert_eq!(args.share(0), 200);
        args.channels = 2;
        let error = args.check().unwrap_err().to_string();
        assert!(error.starts_with("--publish-url: http://a/c:"), "{error}");
        let mut args = parse(&[
            "--publish-url=http://a/c{k}",
            "--stream-url=http://a/c{k}",
            "--streams=2",
            "--channels=3",
        ]);
        let error = args.check().unwrap_err().to_string();
        assert!(
            error.starts_with("--channels: 3 channels but 2 streams"),
            "{error}"
        );
        args.streams = 3;
        args.check().unwrap();
    }
}
