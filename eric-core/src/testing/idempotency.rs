//! Writes with an idempotency key, on any [`Engine`]: a retry is
//! acknowledged with the first answer and applied at most once.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use super::EngineFixture;
use crate::channel::{ChannelSettings, RawAdapter};
use crate::engine::Broadcasts;
use crate::error::Error;
use crate::id::{IdempotencyKey, ListenerId};
use crate::message::Message;
use crate::{Channel, Engine};

type RawChannel<E> = Channel<E, RawAdapter>;

fn channel<E: Engine>(engine: &E, settings: ChannelSettings) -> RawChannel<E> {
    Channel::new(engine, None, settings).unwrap()
}

fn msg(n: u64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

fn key(s: &str) -> IdempotencyKey {
    s.parse().unwrap()
}

async fn listener<E: Engine>(ch: &RawChannel<E>) -> ListenerId {
    ch.add_listener().await.unwrap().id().clone()
}

/// A dispatch retried with its key answers the first sequence number and
/// queues nothing; the key belongs to its listener, another key is another
/// write.
pub async fn a_retried_dispatch_is_applied_once<F: EngineFixture>(f: &F) {
    let ch = channel(&f.engine(), ChannelSettings::default());
    let (a, b) = (listener(&ch).await, listener(&ch).await);
    let first = ch.dispatch_once(&a, msg(1), &key("k")).await.unwrap();
    assert_eq!((first.value, first.replayed), (1, false));
    let again = ch.dispatch_once(&a, msg(1), &key("k")).await.unwrap();
    assert_eq!((again.value, again.replayed), (1, true));
    assert_eq!(ch.queue_len(&a).await.unwrap(), 1);
    let other = ch.dispatch_once(&a, msg(2), &key("k2")).await.unwrap();
    assert_eq!((other.value, other.replayed), (2, false));
    let elsewhere = ch.dispatch_once(&b, msg(1), &key("k")).await.unwrap();
    assert!(!elsewhere.replayed);
    if <F::Engine as Engine>::BROADCASTS == Broadcasts::Copied {
        assert_eq!(elsewhere.value, 1, "each queue numbers its own messages");
    }
    assert_eq!(ch.queue_len(&a).await.unwrap(), 2);
    assert_eq!(ch.queue_len(&b).await.unwrap(), 1);
}

/// A broadcast retried with its key answers the first outcome (full
/// listeners included) and queues nothing more anywhere.
pub async fn a_retried_broadcast_is_applied_once<F: EngineFixture>(f: &F) {
    let settings = ChannelSettings {
        queue_capacity: 1,
        ..ChannelSettings::default()
    };
    let ch = channel(&f.engine(), settings);
    let (a, b, full) = (
        listener(&ch).await,
        listener(&ch).await,
        listener(&ch).await,
    );
    ch.dispatch(&full, msg(0)).await.unwrap();
    let logged = <F::Engine as Engine>::BROADCASTS == Broadcasts::Logged;
    let first = ch.broadcast_once(&msg(1), &key("b")).await.unwrap();
    assert!(!first.replayed);
    if logged {
        assert_eq!((first.value.delivered, first.value.full.len()), (3, 0));
    } else {
        assert_eq!(first.value.delivered, 2);
        assert_eq!(first.value.full, vec![full.clone()]);
    }
    let again = ch.broadcast_once(&msg(1), &key("b")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    for l in [&a, &b, &full] {
        let expected = if logged && l == &full { 2 } else { 1 };
        assert_eq!(ch.queue_len(l).await.unwrap(), expected, "{l}");
    }
    // A dispatch key and a broadcast key of the same text are apart.
    let d = ch.dispatch_once(&a, msg(2), &key("b")).await;
    if logged {
        // The broadcast waits in the log, not in the queue: room remains.
        assert!(matches!(d, Ok(ref d) if !d.replayed), "{d:?}");
    } else {
        assert!(matches!(d, Err(Error::QueueFull { .. })), "{d:?}");
    }
}

/// A refused dispatch (full queue) applied nothing, so its key is not
/// remembered: the retry, once there is room, is applied.
pub async fn a_refused_dispatch_is_not_remembered<F: EngineFixture>(f: &F) {
    let settings = ChannelSettings {
        queue_capacity: 1,
        ..ChannelSettings::default()
    };
    let ch = channel(&f.engine(), settings);
    let a = listener(&ch).await;
    ch.dispatch(&a, msg(0)).await.unwrap();
    let refused = ch.dispatch_once(&a, msg(1), &key("k")).await;
    assert!(
        matches!(refused, Err(Error::QueueFull { .. })),
        "{refused:?}"
    );
    ch.start_listener(&a).await.unwrap();
    ch.deliver_next(&a).await.unwrap();
    let applied = ch.dispatch_once(&a, msg(1), &key("k")).await.unwrap();
    assert_eq!((applied.value, applied.replayed), (2, false));
    let unknown = ch
        .dispatch_once(&"nobody".parse().unwrap(), msg(1), &key("k"))
        .await;
    assert!(
        matches!(unknown, Err(Error::InvalidListener { .. })),
        "{unknown:?}"
    );
}

/// Concurrent retries of one write: exactly one applies it, all get its
/// sequence number.
pub async fn concurrent_retries_apply_a_write_once<F: EngineFixture>(f: &F) {
    let ch = channel(&f.engine(), ChannelSettings::default());
    let a = listener(&ch).await;
    let same = key("same");
    let answers = join_all((0..20).map(|_| ch.dispatch_once(&a, msg(7), &same))).await;
    let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers.iter().filter(|x| !x.replayed).count(), 1);
    assert!(answers.iter().all(|x| x.value == 1));
    assert_eq!(ch.queue_len(&a).await.unwrap(), 1);
}

/// With a zero window keys are not remembered: every write applies.
pub async fn a_zero_window_remembers_no_key<F: EngineFixture>(f: &F) {
    let settings = ChannelSettings {
        idempotency_window: Duration::ZERO,
        ..ChannelSettings::default()
    };
    let ch = channel(&f.engine(), settings);
    let a = listener(&ch).await;
    for n in 0..2 {
        let d = ch.dispatch_once(&a, msg(1), &key("k")).await.unwrap();
        assert_eq!((d.value, d.replayed), (2 * n + 1, false));
        let b = ch.broadcast_once(&msg(1), &key("k")).await.unwrap();
        assert!(!b.replayed);
    }
    assert_eq!(ch.queue_len(&a).await.unwrap(), 4);
}
