//! Queues bounded in bytes, on any [`Engine`](crate::Engine): the byte
//! bound refuses like the count bound, follows every message out of a queue
//! and back in, and bounds the replay window too.

use std::collections::HashSet;

use serde_json::json;

use super::EngineFixture;
use super::behaviour::{channel_with, msg, payload_of};
use crate::channel::{Channel, ChannelSettings, RawAdapter};
use crate::engine::{Broadcasts, Engine};
use crate::error::{Error, QueueBound};
use crate::id::ListenerId;
use crate::message::Message;
use crate::queue::{Delivery, Queue, QueueSnapshot, stored_size};

/// A message of the same stored size for every two-digit `n`.
fn sized(n: i64) -> Message {
    assert!((10..100).contains(&n), "two digits keep the size fixed");
    msg("t", json!(n))
}

/// Dispatches `sized(*next)`, `sized(*next + 1)`, ... until the byte bound
/// `max_bytes` refuses one; returns how many it took. The refused payload
/// number is used up too, so payloads stay distinct.
async fn fill<E: crate::engine::Engine>(
    ch: &Channel<E, RawAdapter>,
    l: &ListenerId,
    next: &mut i64,
    max_bytes: usize,
) -> usize {
    let mut accepted = 0;
    loop {
        let n = *next;
        *next += 1;
        match ch.dispatch(l, sized(n)).await {
            Ok(_) => accepted += 1,
            Err(Error::QueueFull {
                bound: QueueBound::Bytes(bound),
                ..
            }) => {
                assert_eq!(bound, max_bytes);
                return accepted;
            }
            Err(e) => panic!("dispatch of {n}: {e:?}"),
        }
        assert!(accepted <= 100, "the byte bound never refused");
    }
}

/// A queue is bounded in bytes too (`queue_max_bytes`): a push past it is
/// refused as full, changes nothing (no message, no sequence number), and
/// a pop makes room again.
pub async fn byte_bound_refuses_changes_nothing_and_pop_frees_room<F: EngineFixture>(f: &F) {
    let size = stored_size(&sized(10));
    // Room for three messages and a half.
    let max_bytes = 3 * size + size / 2;
    let ch = channel_with(
        f,
        ChannelSettings {
            queue_max_bytes: max_bytes,
            ..Default::default()
        },
    );
    let l = ch.add_listener().await.unwrap();
    for n in 10..13 {
        ch.dispatch(l.id(), sized(n)).await.unwrap();
    }
    let err = ch.dispatch(l.id(), sized(13)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::QueueFull {
                bound: QueueBound::Bytes(b),
                ..
            } if b == max_bytes
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("bytes"), "{err}");
    assert_eq!(ch.queue_len(l.id()).await.unwrap(), 3);
    // Still full: the refusal took no room.
    ch.dispatch(l.id(), sized(14)).await.unwrap_err();
    ch.start_listener(l.id()).await.unwrap();
    assert_eq!(payload_of(&ch.deliver_next(l.id()).await.unwrap()), 10);
    // The pop made room; the refused pushes used up no sequence number.
    assert_eq!(ch.dispatch(l.id(), sized(15)).await.unwrap(), 4);
    ch.dispatch(l.id(), sized(16)).await.unwrap_err();
    let rest: Vec<i64> = [
        ch.deliver_next(l.id()).await.unwrap(),
        ch.deliver_next(l.id()).await.unwrap(),
        ch.deliver_next(l.id()).await.unwrap(),
    ]
    .iter()
    .map(payload_of)
    .collect();
    assert_eq!(rest, [11, 12, 15]);
    // A message larger than the whole bound can never be queued.
    let huge = msg("t", json!("x".repeat(max_bytes)));
    assert!(matches!(
        ch.dispatch(l.id(), huge).await,
        Err(Error::QueueFull {
            bound: QueueBound::Bytes(_),
            ..
        })
    ));
}

/// A broadcast names listeners full by bytes exactly as those full by
/// count, and delivers to the rest (an engine that logs broadcasts refuses
/// none but a message over the bound itself, and keeps the newest).
pub async fn broadcast_names_queues_full_by_bytes<F: EngineFixture>(f: &F) {
    let size = stored_size(&sized(10));
    let ch = channel_with(
        f,
        ChannelSettings {
            queue_max_bytes: 2 * size,
            ..Default::default()
        },
    );
    let a = ch.add_listener().await.unwrap();
    let b = ch.add_listener().await.unwrap();
    ch.dispatch(a.id(), sized(10)).await.unwrap();
    ch.dispatch(a.id(), sized(11)).await.unwrap();
    if <F::Engine as Engine>::BROADCASTS == Broadcasts::Logged {
        for n in 12..=14 {
            let out = ch.broadcast(&sized(n)).await.unwrap();
            assert_eq!((out.delivered, out.full.len()), (2, 0));
        }
        // The log keeps the newest two broadcasts within the bound.
        assert_eq!(ch.queue_len(a.id()).await.unwrap(), 4);
        assert_eq!(ch.queue_len(b.id()).await.unwrap(), 2);
        ch.start_listener(b.id()).await.unwrap();
        assert_eq!(payload_of(&ch.deliver_next(b.id()).await.unwrap()), 13);
        // A message larger than the bound fits nobody: refused for all.
        let huge = Message::try_new("t", json!("x".repeat(3 * size))).unwrap();
        let out = ch.broadcast(&huge).await.unwrap();
        let full: HashSet<_> = out.full.into_iter().collect();
        assert_eq!(out.delivered, 0);
        assert_eq!(full, [a.id().clone(), b.id().clone()].into_iter().collect());
        return;
    }
    let out = ch.broadcast(&sized(12)).await.unwrap();
    assert_eq!((out.delivered, out.full), (1, vec![a.id().clone()]));
    assert_eq!(ch.queue_len(a.id()).await.unwrap(), 2);
    assert_eq!(ch.queue_len(b.id()).await.unwrap(), 1);
    let out = ch.broadcast(&sized(13)).await.unwrap();
    assert_eq!((out.delivered, out.full.len()), (1, 1));
    let out = ch.broadcast(&sized(14)).await.unwrap();
    let full: HashSet<_> = out.full.into_iter().collect();
    assert_eq!(out.delivered, 0);
    assert_eq!(full, [a.id().clone(), b.id().clone()].into_iter().collect());
    // A pop frees room for the next broadcast.
    ch.start_listener(b.id()).await.unwrap();
    assert_eq!(payload_of(&ch.deliver_next(b.id()).await.unwrap()), 12);
    let out = ch.broadcast(&sized(15)).await.unwrap();
    assert_eq!((out.delivered, out.full), (1, vec![a.id().clone()]));
}

/// The byte count follows every message out of the queue and back in:
/// `deliver_next`, `take`, `rewind`, `unread`, `restore`. Each step checks
/// how many more messages fit, which is exact only if the count is.
pub async fn byte_count_stays_exact_across_take_rewind_unread_restore_and_deliver_next<
    F: EngineFixture,
>(
    f: &F,
) {
    let size = stored_size(&sized(10));
    let max = 4 * size;
    let ch = channel_with(
        f,
        ChannelSettings {
            queue_max_bytes: max,
            ..Default::default()
        },
    );
    let l = ch.add_listener().await.unwrap();
    let id = l.id();
    ch.start_listener(id).await.unwrap();
    let member = ch.member(id).await.unwrap();
    let q = member.queue();
    let mut next = 10;
    // Pushes: 10..13 (seq 1..4).
    assert_eq!(fill(&ch, id, &mut next, max).await, 4);
    // deliver_next frees one message's bytes.
    assert_eq!(payload_of(&ch.deliver_next(id).await.unwrap()), 10);
    assert_eq!(fill(&ch, id, &mut next, max).await, 1);
    // take frees what it hands out (it stays in the replay window).
    let taken = q.take(2).await.unwrap();
    let seqs: Vec<u64> = taken.deliveries.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(fill(&ch, id, &mut next, max).await, 2);
    // rewind counts what comes back (over the bound: never refused).
    assert_eq!(q.rewind(2).await.unwrap().restored, 1);
    assert_eq!(q.len().await.unwrap(), 5);
    assert_eq!(fill(&ch, id, &mut next, max).await, 0);
    assert_eq!(q.pop_batch(2).await.unwrap().len(), 2);
    assert_eq!(fill(&ch, id, &mut next, max).await, 1);
    // unread counts what comes back.
    let taken = q.take(2).await.unwrap();
    assert_eq!(fill(&ch, id, &mut next, max).await, 2);
    q.unread(taken).await.unwrap();
    assert_eq!(q.len().await.unwrap(), 6);
    assert_eq!(fill(&ch, id, &mut next, max).await, 0);
    // restore counts what it brings in.
    let drained = q.pop_batch(100).await.unwrap();
    assert_eq!(drained.len(), 6);
    let last_seq = drained.iter().map(|d| d.seq).max().unwrap();
    let restored: Vec<Delivery> = [90, 91]
        .into_iter()
        .zip(1..)
        .map(|(n, k)| Delivery {
            seq: last_seq + k,
            message: sized(n),
        })
        .collect();
    q.restore(QueueSnapshot {
        next_seq: last_seq + 3,
        messages: restored,
        window: Vec::new(),
    })
    .await
    .unwrap();
    assert_eq!(fill(&ch, id, &mut next, max).await, 2);
    // Emptied, the queue holds exactly nothing: the full bound is free.
    assert_eq!(q.pop_batch(100).await.unwrap().len(), 4);
    assert_eq!(fill(&ch, id, &mut next, max).await, 4);
}

/// The replay window keeps at most `queue_max_bytes` too (a stream of big
/// messages must not keep `replay_window` of them): the oldest leave it
/// first, and a resume from before them reports the gap.
pub async fn replay_window_is_bounded_in_bytes_too<F: EngineFixture>(f: &F) {
    let size = stored_size(&sized(10));
    let ch = channel_with(
        f,
        ChannelSettings {
            queue_max_bytes: 3 * size,
            ..Default::default()
        },
    );
    let l = ch.add_listener().await.unwrap();
    let member = ch.member(l.id()).await.unwrap();
    let q = member.queue();
    for round in 0..2 {
        for n in 0..3 {
            ch.dispatch(l.id(), sized(10 + 3 * round + n))
                .await
                .unwrap();
        }
        assert_eq!(q.take(3).await.unwrap().deliveries.len(), 3);
    }
    // Six taken; the window holds the last three (seq 4..6).
    let rewind = q.rewind(0).await.unwrap();
    assert_eq!((rewind.restored, rewind.gap), (3, true));
    let back: Vec<u64> = q
        .pop_batch(10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.seq)
        .collect();
    assert_eq!(back, [4, 5, 6]);
    // The window's bytes never count against the queue's.
    for n in 0..3 {
        ch.dispatch(l.id(), sized(20 + n)).await.unwrap();
    }
}
