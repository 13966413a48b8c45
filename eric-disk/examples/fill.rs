//! Fills a data directory for the restart benchmark (bench/disk.sh):
//! CHANNELS channels × LISTENERS listeners × MESSAGES queued messages of
//! about 100 bytes each, written through the disk engine as `eric serve`
//! would write them, then closed cleanly.
//!
//! `cargo run --release -p eric-disk --example fill -- DIR [CHANNELS LISTENERS MESSAGES]`

#![allow(clippy::unwrap_used, clippy::expect_used)]
// A benchmark tool: its figures are its output.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use eric_core::persistence::{ChannelRecord, ChannelRepository};
use eric_core::{Channel, ChannelId, ChannelSettings, MemoryEngine, Message, RawAdapter};
use eric_disk::{DiskConfig, DiskEngine, Fsync};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .expect("usage: fill DIR [CHANNELS LISTENERS MESSAGES]");
    let number = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (channels, listeners, messages) = (number(1, 1_000), number(2, 10), number(3, 100));
    let config = DiskConfig {
        data_dir: dir.into(),
        fsync: Fsync::Everysec,
    };
    let engine = DiskEngine::open(config, MemoryEngine::new().with_budget(8 << 30)).unwrap();
    let repository = engine.channel_repository();
    let payload = serde_json::json!({"text": "x".repeat(80)});
    let start = Instant::now();
    for c in 0..channels {
        let settings = ChannelSettings::default();
        let id: ChannelId = format!("channel-{c}").parse().unwrap();
        repository
            .create(&ChannelRecord {
                id: id.clone(),
                settings: settings.clone(),
            })
            .await
            .unwrap();
        let channel: Channel<DiskEngine, RawAdapter> =
            Channel::new(&engine, Some(id), settings).unwrap();
        let mut ids = Vec::with_capacity(listeners);
        for _ in 0..listeners {
            ids.push(channel.add_listener().await.unwrap().id().clone());
        }
        let mut writes = Vec::new();
        for id in &ids {
            for _ in 0..messages {
                let message = Message::try_new("fill", payload.clone()).unwrap();
                writes.push(channel.dispatch(id, message));
            }
        }
        // Concurrent, so they share commits, as many producers would.
        for write in futures_util::future::join_all(writes).await {
            write.unwrap();
        }
    }
    let filled = start.elapsed();
    let close = Instant::now();
    engine.close();
    println!(
        "filled {} messages ({channels} channels × {listeners} listeners × {messages}) in {:.1} s, closed in {:.2} s",
        channels * listeners * messages,
        filled.as_secs_f64(),
        close.elapsed().as_secs_f64()
    );
}
