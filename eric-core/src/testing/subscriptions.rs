//! Listeners' subscriptions through any engine: broadcasts follow the
//! matching table, dispatches ignore subscriptions, changes are atomic with
//! respect to concurrent broadcasts and bounded by `max_subscriptions`.

use std::collections::HashSet;

use serde_json::json;

use super::EngineFixture;
use super::behaviour::{channel, channel_with, msg, next_message};
use super::topics::MATCH_CASES;
use crate::channel::{Channel, ChannelSettings, RawAdapter};
use crate::error::Error;
use crate::id::ListenerId;
use crate::listener::Listener;
use crate::message::Message;
use crate::subscription::{Subscription, SubscriptionChange, Subscriptions};
use crate::topic::Topic;

fn sub(t: &str, filter: Option<&str>) -> Subscription {
    Subscription::new(t.parse().unwrap(), filter.map(|f| f.parse().unwrap()))
}

fn subs(list: &[(&str, Option<&str>)]) -> Subscriptions {
    list.iter().map(|(t, f)| sub(t, *f)).collect()
}

fn about(t: &str, n: i64, topic: Option<&str>) -> Message {
    let m = msg(t, json!(n));
    match topic {
        Some(topic) => m.with_topic(Topic::new(topic).unwrap()),
        None => m,
    }
}

/// Payloads of everything queued for `listener`, in order.
async fn drain<E: crate::Engine>(ch: &Channel<E, RawAdapter>, listener: &ListenerId) -> Vec<i64> {
    ch.start_listener(listener).await.unwrap();
    let mut got = Vec::new();
    while let Ok(d) = ch.deliver_next(listener).await {
        got.push(d.message.payload_value().as_i64().unwrap());
    }
    got
}

/// Every row of the matching table, published: one listener per row holds
/// `(t, filter)`; one broadcast per row of type `t` with the row's topic
/// reaches exactly the listeners whose row matches it, plus the listener
/// without subscriptions. A broadcast of another type reaches none of them.
pub async fn broadcasts_follow_the_matching_table<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let open = ch.add_listener().await.unwrap();
    let mut rows = Vec::new();
    for case in MATCH_CASES {
        let l = ch
            .add_listener_with(subs(&[("t", Some(case.filter))]))
            .await
            .unwrap();
        rows.push(l.id().clone());
    }
    for (n, case) in MATCH_CASES.iter().enumerate() {
        let expected = 1 + MATCH_CASES
            .iter()
            .filter(|c| {
                crate::TopicFilter::new(c.filter)
                    .unwrap()
                    .matches(case.topic.map(|t| Topic::new(t).unwrap()).as_ref())
            })
            .count();
        let b = ch
            .broadcast(&about("t", n as i64, case.topic))
            .await
            .unwrap();
        assert_eq!(b.delivered, expected, "row {n}: {case:?}");
    }
    let other = ch.broadcast(&about("u", -1, Some("a.b"))).await.unwrap();
    assert_eq!(
        other.delivered, 1,
        "another type reaches the open listener only"
    );
    for (n, (case, listener)) in MATCH_CASES.iter().zip(&rows).enumerate() {
        let got = drain(&ch, listener).await;
        assert_eq!(
            got.contains(&(n as i64)),
            case.matches,
            "{}: {case:?}",
            case.why
        );
    }
    assert_eq!(drain(&ch, open.id()).await.len(), MATCH_CASES.len() + 1);
}

/// A subscription without a filter takes every topic and messages without
/// one; types compare exactly; a dispatch ignores subscriptions.
pub async fn no_filter_takes_every_topic_and_dispatch_ignores_subscriptions<F: EngineFixture>(
    f: &F,
) {
    let ch = channel(f);
    let l = ch
        .add_listener_with(subs(&[("reading", None)]))
        .await
        .unwrap();
    ch.broadcast(&about("reading", 1, None)).await.unwrap();
    ch.broadcast(&about("reading", 2, Some("x.y")))
        .await
        .unwrap();
    ch.broadcast(&about("Reading", 3, None)).await.unwrap();
    ch.broadcast(&about("status", 4, None)).await.unwrap();
    ch.dispatch(l.id(), about("status", 5, Some("z")))
        .await
        .unwrap();
    assert_eq!(drain(&ch, l.id()).await, [1, 2, 5]);
}

/// Read, replace, edit; a change over the bound is refused whole; an empty
/// set means every broadcast again; an unknown listener is an error.
pub async fn subscriptions_are_read_replaced_edited_and_bounded<F: EngineFixture>(f: &F) {
    let ch = channel_with(
        f,
        ChannelSettings {
            max_subscriptions: 3,
            ..Default::default()
        },
    );
    let l = ch.add_listener().await.unwrap();
    assert!(ch.subscriptions(l.id()).await.unwrap().is_empty());
    let set = subs(&[("a", None), ("b", Some("x"))]);
    let now = ch
        .change_subscriptions(l.id(), SubscriptionChange::Replace(set.clone()))
        .await
        .unwrap();
    assert_eq!(now, set);
    assert_eq!(ch.subscriptions(l.id()).await.unwrap(), set);
    let edit = SubscriptionChange::Edit {
        remove: vec![sub("a", None)],
        add: vec![sub("c", None), sub("d", Some("y"))],
    };
    let now = ch.change_subscriptions(l.id(), edit).await.unwrap();
    assert_eq!(
        now,
        subs(&[("b", Some("x")), ("c", None), ("d", Some("y"))])
    );
    let over = SubscriptionChange::Edit {
        remove: vec![],
        add: vec![sub("e", None)],
    };
    let err = ch.change_subscriptions(l.id(), over).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManySubscriptions {
                count: 4,
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        ch.subscriptions(l.id()).await.unwrap(),
        now,
        "nothing changed"
    );
    let too_many = subs(&[("a", None), ("b", None), ("c", None), ("d", None)]);
    assert!(matches!(
        ch.add_listener_with(too_many).await,
        Err(Error::TooManySubscriptions { .. })
    ));

    ch.broadcast(&about("b", 1, Some("x.1"))).await.unwrap();
    ch.broadcast(&about("a", 2, None)).await.unwrap();
    ch.change_subscriptions(
        l.id(),
        SubscriptionChange::Replace(Subscriptions::default()),
    )
    .await
    .unwrap();
    ch.broadcast(&about("a", 3, None)).await.unwrap();
    assert_eq!(drain(&ch, l.id()).await, [1, 3]);

    let ghost = ListenerId::new("ghost").unwrap();
    assert!(matches!(
        ch.subscriptions(&ghost).await,
        Err(Error::InvalidListener { .. })
    ));
    let change = SubscriptionChange::Replace(set);
    assert!(matches!(
        ch.change_subscriptions(&ghost, change).await,
        Err(Error::InvalidListener { .. })
    ));
}

/// A listener whose several subscriptions match one broadcast (`a` and
/// `a.b` for topic `a.b.c`, and one without a filter) gets it once.
pub async fn several_matching_subscriptions_deliver_once<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch
        .add_listener_with(subs(&[
            ("t", Some("a")),
            ("t", Some("a.b")),
            ("t", Some("a.")),
            ("t", None),
        ]))
        .await
        .unwrap();
    let b = ch.broadcast(&about("t", 1, Some("a.b.c"))).await.unwrap();
    assert_eq!(b.delivered, 1);
    assert_eq!(drain(&ch, l.id()).await, [1]);
}

/// Registering an id again with subscriptions replaces them (queue kept);
/// without, keeps them. Removing a listener takes its subscriptions along:
/// the same id registered afresh holds none.
pub async fn registering_again_replaces_or_keeps_and_removal_forgets<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let id = ListenerId::new("durable").unwrap();
    let first = subs(&[("a", None)]);
    ch.register_listener_with(Listener::with_id(id.clone()), Some(first.clone()))
        .await
        .unwrap();
    ch.broadcast(&about("a", 1, None)).await.unwrap();
    ch.register_listener(Listener::with_id(id.clone()))
        .await
        .unwrap();
    assert_eq!(ch.subscriptions(&id).await.unwrap(), first, "kept");
    let second = subs(&[("b", None)]);
    ch.register_listener_with(Listener::with_id(id.clone()), Some(second.clone()))
        .await
        .unwrap();
    assert_eq!(ch.subscriptions(&id).await.unwrap(), second, "replaced");
    ch.broadcast(&about("a", 2, None)).await.unwrap();
    ch.broadcast(&about("b", 3, None)).await.unwrap();
    assert_eq!(drain(&ch, &id).await, [1, 3], "the queue was kept");

    ch.remove_listener(&id).await.unwrap();
    let b = ch.broadcast(&about("b", 4, None)).await.unwrap();
    assert_eq!(b.delivered, 0);
    ch.register_listener(Listener::with_id(id.clone()))
        .await
        .unwrap();
    assert!(ch.subscriptions(&id).await.unwrap().is_empty());
    ch.broadcast(&about("z", 5, None)).await.unwrap();
    assert_eq!(drain(&ch, &id).await, [5]);
}

/// A watch (the channel's temporary listener) holding subscriptions gets
/// only what they admit.
pub async fn a_watch_with_subscriptions_gets_only_matches<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let mut w = ch.watch_with(subs(&[("t", Some("lab"))])).await.unwrap();
    ch.broadcast(&about("t", 1, Some("office"))).await.unwrap();
    ch.broadcast(&about("u", 2, Some("lab"))).await.unwrap();
    ch.broadcast(&about("t", 3, Some("lab.fridge")))
        .await
        .unwrap();
    let got = next_message(&mut w).await;
    assert_eq!(got.message.payload_value(), json!(3));
    w.close().await.unwrap();
}

/// A change races broadcasts of four types, `a` and `b` held before it and
/// `c` and `d` after: each broadcast sees the whole old set or the whole
/// new one. So the listener receives every `a`/`b` published before some
/// point and every `c`/`d` published after it, nothing else.
pub async fn a_change_is_atomic_for_concurrent_broadcasts<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch
        .add_listener_with(subs(&[("a", None), ("b", None)]))
        .await
        .unwrap();
    let types = ["a", "b", "c", "d"];
    let (halfway, reached) = tokio::sync::oneshot::channel();
    let publisher = {
        let ch = ch.clone();
        tokio::spawn(async move {
            let mut halfway = Some(halfway);
            for n in 0..400 {
                ch.broadcast(&about(types[n % 4], n as i64, None))
                    .await
                    .unwrap();
                if n == 100 {
                    // The change starts while broadcasts go on.
                    let _ = halfway.take().map(|h| h.send(()));
                }
                tokio::task::yield_now().await;
            }
        })
    };
    super::within("the publisher to get going", reached)
        .await
        .unwrap();
    let change = SubscriptionChange::Edit {
        remove: vec![sub("a", None), sub("b", None)],
        add: vec![sub("c", None), sub("d", None)],
    };
    ch.change_subscriptions(l.id(), change).await.unwrap();
    publisher.await.unwrap();
    let got = drain(&ch, l.id()).await;
    let new_set: HashSet<usize> = [2, 3].into();
    let received_at_cut = |cut: usize| -> Vec<i64> {
        (0..400)
            .filter(|&n| new_set.contains(&(n % 4)) == (n >= cut))
            .map(|n| n as i64)
            .collect()
    };
    assert!(
        (101..=400).any(|cut| received_at_cut(cut) == got),
        "no single point switches old set for new: {got:?}"
    );
}

/// Listener `i`'s subscriptions in the filtered-broadcast benchmarks, the
/// same for every engine: ten each, `reading` under `lab{i % 10}` and nine
/// other types, so [`audience_message`] matches one listener in ten.
pub fn audience_subscriptions(i: usize) -> Subscriptions {
    let lab = format!("lab{}", i % 10);
    std::iter::once(sub("reading", Some(&lab)))
        .chain((1..10).map(|k| sub(&format!("other{k}"), None)))
        .collect()
}

/// The message of the filtered-broadcast benchmarks: a `reading` about
/// `lab3.fridge`.
pub fn audience_message() -> Message {
    about("reading", 1, Some("lab3.fridge"))
}
