//! `eric load peer fanout`: N streams on one channel, M messages published
//! to it. The streams are all open before the first publish; the clock
//! runs from the first publish until the last stream has its M-th message.
//! Reported: deliveries/s (N × M over that time), the publish rate, and
//! end-to-end latency.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::publish::Publisher;
use super::reader::Reader;
use super::{Deliveries, STALL, Streams, Template, now_micros};
use crate::error::Result;
use crate::join_all;
use crate::report::Report;
use crate::stats::per_second;

/// Options of `eric load peer fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct FanoutArgs {
    /// URL every message is posted to (`{i}` stands for 0).
    #[arg(long)]
    publish_url: Template,
    #[command(flatten)]
    stream: Streams,
    /// Streams, each on a connection of its own.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Messages published.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Publishes in flight at once (each on its own connection).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    publishers: u32,
}

/// Runs the measurement.
pub(crate) async fn run(args: FanoutArgs) -> Result<Report> {
    let publisher = Publisher::new()?;
    let give_up = CancellationToken::new();
    let since = now_micros();
    let readers = (0..args.streams)
        .map(|i| Reader {
            url: args.stream.stream_url.url(i),
            expected: args.messages,
            since,
            stall: STALL,
            delivered: None,
            give_up: give_up.clone(),
        })
        .collect();
    let readers = args.stream.open(readers, &give_up).await?;
    let began = Instant::now();
    let publishing = async {
        let urls = (0..args.messages).map(|_| args.publish_url.url(0));
        let published = publisher.publish_all(urls, args.publishers).await;
        if published.is_err() {
            give_up.cancel();
        }
        published.map(|()| began.elapsed())
    };
    let (published, received) = tokio::join!(publishing, join_all(readers));
    let publish_time = published?;
    let deliveries = Deliveries::merge(received?);
    let elapsed = deliveries.last.map_or(Duration::ZERO, |last| last - began);
    let mut report = Report::new("peer fanout");
    report.count("streams", u64::from(args.streams));
    report.count("messages", args.messages);
    report.rate(
        "publish_rate",
        per_second(args.messages, publish_time),
        "publishes/s",
    );
    deliveries.report(&mut report, elapsed);
    Ok(report)
}
