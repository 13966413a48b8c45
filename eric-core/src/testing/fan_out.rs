//! Listeners streaming on this process, for the benches that broadcast to
//! them (the fan-out benches of every engine share it, so they measure the
//! same readers).

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::channel::{Channel, RawAdapter, StreamItem, StreamOptions};
use crate::engine::Engine;
use crate::message::Message;

/// Readers of `listeners` new, started listeners of `ch`, each a task
/// reading its stream and sending `()` after every `per_signal` messages;
/// abort them when done (they wait for more).
pub async fn streaming<E: Engine>(
    ch: &Channel<E, RawAdapter>,
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

/// The fan-out benches' measurement: `listeners` streaming listeners of
/// `ch`, then `iters` rounds of `broadcasts` broadcasts of `message` with
/// `publishers` in flight, each round timed until every stream has yielded
/// every broadcast of it.
pub async fn timed<E: Engine>(
    ch: &Channel<E, RawAdapter>,
    listeners: usize,
    broadcasts: usize,
    publishers: usize,
    message: &Message,
    iters: u64,
) -> Duration {
    let (mut finished, readers) = streaming(ch, listeners, broadcasts).await;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        stream::iter(0..broadcasts)
            .map(|_| ch.broadcast(message))
            .buffer_unordered(publishers)
            .for_each(|outcome| {
                black_box(outcome.unwrap());
                async {}
            })
            .await;
        for _ in 0..listeners {
            finished.recv().await.unwrap();
        }
        total += start.elapsed();
    }
    for reader in readers {
        reader.abort();
    }
    total
}
