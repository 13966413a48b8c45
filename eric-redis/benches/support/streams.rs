//! Listeners streaming on one node, for the benches that broadcast to them.

use std::hint::black_box;

use eric_core::{Channel, RawAdapter, StreamItem, StreamOptions};
use eric_redis::RedisEngine;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Readers of `listeners` new, started listeners of `ch`, each a task
/// reading its stream and sending `()` after every `per_signal` messages;
/// abort them when done (they wait for more).
pub(crate) async fn streaming(
    ch: &Channel<RedisEngine, RawAdapter>,
    listeners: usize,
    per_signal: usize,
) -> (mpsc::UnboundedReceiver<()>, Vec<JoinHandle<()>>) {
    let (done, finished) = mpsc::unbounded_channel();
    let mut readers = Vec::with_capacity(listeners);
    for _ in 0..listeners {
        let l = ch.add_listener().await.unwrap();
        ch.start_listener(l.id()).await.unwrap();
        let mut s = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            loop {
                for _ in 0..per_signal {
                    match s.next().await {
                        Some(StreamItem::Message(d)) => {
                            black_box(d);
                        }
                        other => panic!("unexpected stream item {other:?}"),
                    }
                }
                if done.send(()).is_err() {
                    return;
                }
            }
        }));
    }
    (finished, readers)
}
