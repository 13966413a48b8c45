"""Subscribers end to end, on one node in memory and across two nodes on
Redis: the matching rule, subscriptions taking effect before `subscribe`
returns, many and changing subscriptions, errors, timeouts, the lifecycle,
and both the blocking classes (from plain threads) and the async ones.

Nothing waits by sleeping: a test waits for an event under a deadline
(`get(timeout=DEADLINE)`), and proves an event was *not* delivered by
receiving a `Done` published after it (a listener's events keep their
order)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import pytest
from events import Base, Derived, Done, Probe, Tick
from servers import TOKEN, mint, unique

from eric_juice import (
    EricError,
    Event,
    PublisherAsync,
    PublisherBlocking,
    Subscriber,
    SubscriberAsync,
    SubscriberBlocking,
)

#: Longest wait for an event that must come.
DEADLINE = 10.0

CASES = json.loads((Path(__file__).parent / "match_cases.json").read_text(encoding="utf-8"))[
    "cases"
]


def until_done(subscriber: SubscriberBlocking) -> list[Event]:
    """Every event up to `Done` (excluded)."""
    events = []
    while not isinstance(event := subscriber.get(timeout=DEADLINE), Done):
        events.append(event)
    return events


async def until_done_async(subscriber: SubscriberAsync) -> list[Event]:
    events = []
    while not isinstance(event := await subscriber.get(timeout=DEADLINE), Done):
        events.append(event)
    return events


def test_the_matching_table_end_to_end(setup):
    filters = sorted({case["filter"] for case in CASES})
    subscribers = {}
    for f in filters:
        subscriber = SubscriberBlocking(setup.sub)
        subscriber.subscribe(Done)
        subscriber.subscribe(Probe, topic=f)
        subscribers[f] = subscriber
    with PublisherBlocking(setup.pub) as publisher:
        for i, case in enumerate(CASES):
            publisher.publish(Probe(case=i, about=case["topic"]))
        publisher.publish(Done())
    received = {f: {event.case for event in until_done(s)} for f, s in subscribers.items()}
    for s in subscribers.values():
        s.close()
    wrong = [
        (case["filter"], case["topic"], case["why"])
        for i, case in enumerate(CASES)
        if (i in received[case["filter"]]) != case["matches"]
    ]
    assert wrong == []


def test_a_subscription_is_to_one_exact_type(setup):
    with SubscriberBlocking(setup.sub) as subscriber, PublisherBlocking(setup.pub) as publisher:
        subscriber.subscribe(Done)
        subscriber.subscribe(Base)
        publisher.publish(Derived(value=1))
        publisher.publish(Tick(n=1))
        publisher.publish(Base(value=2))
        publisher.publish(Done())
        assert until_done(subscriber) == [Base(value=2)]


def test_no_subscription_receives_nothing(setup):
    with SubscriberBlocking(setup.sub) as subscriber, PublisherBlocking(setup.pub) as publisher:
        publisher.publish(Tick(n=1))
        with pytest.raises(TimeoutError):
            subscriber.get(timeout=0.2)
    assert httpx.get(f"{setup.base_sub}/v1/channels/{setup.channel}/listeners").json() == []


def test_get_times_out_when_nothing_matches(setup):
    with SubscriberBlocking(setup.sub) as subscriber, PublisherBlocking(setup.pub) as publisher:
        subscriber.subscribe(Tick, topic="a")
        publisher.publish(Tick(n=1, about="b"))
        with pytest.raises(TimeoutError):
            subscriber.get(timeout=0.2)
        with pytest.raises(TimeoutError):
            subscriber.get(timeout=0)


def test_many_subscriptions_on_one_subscriber(setup):
    with SubscriberBlocking(setup.sub) as subscriber, PublisherBlocking(setup.pub) as publisher:
        subscriber.subscribe(Done)
        for i in range(0, 400, 2):
            subscriber.subscribe(Tick, topic=f"s.{i}")
        subscriber.subscribe(Probe)
        for i in range(400):
            publisher.publish(Tick(n=i, about=f"s.{i}.x"))
        publisher.publish(Probe(case=1))
        publisher.publish(Done())
        events = until_done(subscriber)
    assert [e.n for e in events if isinstance(e, Tick)] == list(range(0, 400, 2))
    assert events[-1] == Probe(case=1)


def test_too_many_subscriptions_is_eric_s_error(setup):
    httpx.post(
        f"{setup.base_pub}/v1/channels",
        json={"id": setup.channel, "settings": {"max_subscriptions": 2}},
    ).raise_for_status()
    with SubscriberBlocking(setup.sub) as subscriber:
        subscriber.subscribe(Tick, topic="a")
        subscriber.subscribe(Tick, topic="b")
        with pytest.raises(EricError) as refused:
            subscriber.subscribe(Tick, topic="c")
    assert (refused.value.code, refused.value.status) == ("too_many_subscriptions", 400)


@pytest.mark.parametrize("topic", ["", "a\nb", "x" * 257])
def test_an_invalid_filter_is_eric_s_invalid_topic_and_changes_nothing(setup, topic):
    with SubscriberBlocking(setup.sub) as subscriber, PublisherBlocking(setup.pub) as publisher:
        with pytest.raises(EricError) as refused:
            subscriber.subscribe(Tick, topic=topic)  # the first: no listener is made
        assert (refused.value.code, refused.value.status) == ("invalid_topic", 400)
        subscriber.subscribe(Done)
        with pytest.raises(EricError):
            subscriber.subscribe(Tick, topic=topic)  # a later one: the set is kept
        publisher.publish(Tick(n=1, about="a"))
        publisher.publish(Done())
        assert until_done(subscriber) == []


def test_two_classes_of_one_name_are_refused(setup):
    other = type("Tick", (Event,), {"__annotations__": {"n": int}})
    with SubscriberBlocking(setup.sub) as subscriber:
        subscriber.subscribe(Tick)
        with pytest.raises(ValueError):
            subscriber.subscribe(other)


def test_changing_subscriptions_while_publishing(setup):
    """A publisher thread publishes Ticks about t.0 to t.4 in turn while the
    subscriber adds t.0, then t.1, then t.2. After each subscribe returns,
    every later event of that topic arrives; t.3 and t.4 never do; none
    twice; in order."""
    total = 1500
    started = [0]  # publishes begun, read after each subscribe returns
    subscriber = SubscriberBlocking(setup.sub)
    subscriber.subscribe(Done)

    def publish() -> None:
        with PublisherBlocking(setup.pub) as publisher:
            for n in range(total):
                started[0] = n + 1
                publisher.publish(Tick(n=n, about=f"t.{n % 5}"))
            publisher.publish(Done())

    publisher = threading.Thread(target=publish)
    publisher.start()
    since = {}
    received: list[Tick] = []
    for k in range(3):
        subscriber.subscribe(Tick, topic=f"t.{k}")
        since[k] = started[0]
        while len(received) < 30 * (k + 1):
            event = subscriber.get(timeout=DEADLINE)
            assert isinstance(event, Tick), (
                "the publisher ended before the test changed its subscriptions"
            )
            received.append(event)
    received += until_done(subscriber)
    publisher.join()
    subscriber.close()
    ns = [e.n for e in received]
    assert ns == sorted(set(ns)), "in order, none twice"
    assert {n % 5 for n in ns} == {0, 1, 2}
    for k, first in since.items():
        expected = [n for n in range(first, total) if n % 5 == k]
        assert [n for n in ns if n % 5 == k and n >= first] == expected, (
            f"t.{k} after its subscribe"
        )


def test_blocking_subscribers_in_plain_threads(setup):
    results: dict[int, list[Event]] = {}

    def run(k: int, ready: threading.Barrier) -> None:
        with SubscriberBlocking(setup.sub) as subscriber:
            subscriber.subscribe(Done)
            subscriber.subscribe(Tick, topic=f"w.{k}")
            ready.wait()
            results[k] = until_done(subscriber)

    ready = threading.Barrier(5)
    threads = [threading.Thread(target=run, args=(k, ready)) for k in range(4)]
    for t in threads:
        t.start()
    ready.wait()
    with PublisherBlocking(setup.pub) as publisher:
        for n in range(40):
            publisher.publish(Tick(n=n, about=f"w.{n % 4}"))
        publisher.publish(Done())
    for t in threads:
        t.join()
    assert {k: [e.n for e in events] for k, events in results.items()} == {
        k: list(range(k, 40, 4)) for k in range(4)
    }


def test_close_removes_the_listener(setup):
    subscriber = SubscriberBlocking(setup.sub)
    subscriber.subscribe(Tick)
    listeners = f"{setup.base_sub}/v1/channels/{setup.channel}/listeners"
    assert len(httpx.get(listeners).json()) == 1
    subscriber.close()
    assert httpx.get(listeners).json() == []
    subscriber.close()  # twice is fine


def test_a_listener_removed_under_the_subscriber_ends_get_with_eric_s_error(setup):
    subscriber = SubscriberBlocking(setup.sub)
    subscriber.subscribe(Tick)
    [listener] = httpx.get(f"{setup.base_sub}/v1/channels/{setup.channel}/listeners").json()
    httpx.delete(
        f"{setup.base_pub}/v1/channels/{setup.channel}/listeners/{listener['id']}"
    ).raise_for_status()
    for _ in range(2):  # and every later get
        with pytest.raises(EricError) as ended:
            subscriber.get(timeout=DEADLINE)
        assert ended.value.code == "listener_not_found"
    subscriber.close()


def test_a_subscriber_sends_the_token_from_eric_token(guarded_node, monkeypatch):
    uri = guarded_node.uri(unique("t"))
    monkeypatch.delenv("ERIC_TOKEN", raising=False)
    with SubscriberBlocking(uri) as subscriber, pytest.raises(EricError) as refused:
        subscriber.subscribe(Tick)
    assert (refused.value.code, refused.value.status) == ("unauthorized", 401)
    monkeypatch.setenv("ERIC_TOKEN", TOKEN)
    with SubscriberBlocking(uri) as subscriber, PublisherBlocking(uri) as publisher:
        subscriber.subscribe(Tick)
        publisher.publish(Tick(n=1))
        assert subscriber.get(timeout=DEADLINE) == Tick(n=1)


def test_scoped_tokens_let_a_subscriber_and_a_publisher_do_their_part(jwt_node, monkeypatch):
    """A subscriber with `subscribe` on the channel makes, subscribes and
    removes its listener; a publisher with `publish` sends; neither may do
    the other's part. The channel is made by an admin beforehand."""
    channel = unique("scoped")
    base = f"http://{jwt_node.addr}/v1/channels"
    admin = {"Authorization": f"Bearer {TOKEN}"}
    httpx.post(base, json={"id": channel}, headers=admin).raise_for_status()
    uri = jwt_node.uri(channel)
    reader, writer = mint("--subscribe", channel), mint("--publish", channel)
    monkeypatch.setenv("ERIC_TOKEN", reader)
    subscriber = SubscriberBlocking(uri)
    wrong_publisher = PublisherBlocking(uri)
    monkeypatch.setenv("ERIC_TOKEN", writer)
    with subscriber, PublisherBlocking(uri) as publisher, wrong_publisher:
        subscriber.subscribe(Tick)
        subscriber.subscribe(Done)
        publisher.publish(Tick(n=1))
        assert subscriber.get(timeout=DEADLINE) == Tick(n=1)
        with pytest.raises(EricError) as refused:
            wrong_publisher.publish(Tick(n=2))
        assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    with SubscriberBlocking(uri) as wrong_subscriber, pytest.raises(EricError) as refused:
        wrong_subscriber.subscribe(Tick)
    assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    # The subscriber removed its listener when it closed.
    listed = httpx.get(f"{base}/{channel}/listeners", headers=admin)
    assert listed.json() == [], listed.text


# -- async -------------------------------------------------------------


@pytest.mark.anyio
async def test_async_subscribe_then_get(setup):
    async with SubscriberAsync(setup.sub) as subscriber, PublisherAsync(setup.pub) as publisher:
        subscriber.subscribe(Tick, topic="a")
        subscriber.subscribe(Done)
        await publisher.publish(Tick(n=1, about="b"))
        await publisher.publish(Tick(n=2, about="a.x"))
        await publisher.publish(Done())
        assert await until_done_async(subscriber) == [Tick(n=2, about="a.x")]


@pytest.mark.anyio
async def test_async_get_times_out_without_a_subscription(setup):
    async with Subscriber(setup.sub) as subscriber, PublisherAsync(setup.pub) as publisher:
        await publisher.publish(Tick(n=1))
        with pytest.raises(TimeoutError):
            await subscriber.get(timeout=0.2)


@pytest.mark.anyio
async def test_a_subscribe_while_get_waits_reaches_that_get(setup):
    async with SubscriberAsync(setup.sub) as subscriber, PublisherAsync(setup.pub) as publisher:
        waiting = asyncio.ensure_future(subscriber.get(timeout=DEADLINE))
        await asyncio.sleep(0)  # let get start waiting (no timing involved)
        subscriber.subscribe(Tick)
        await publisher.publish(Tick(n=7))
        assert await waiting == Tick(n=7)


@pytest.mark.anyio
async def test_the_deprecated_queue_listen_and_stop(setup):
    queue: asyncio.Queue[Event] = asyncio.Queue()
    subscriber = SubscriberAsync(setup.sub, queue=queue)
    assert subscriber.queue is queue
    subscriber.subscribe(Tick)
    listening = asyncio.ensure_future(subscriber.listen())
    async with PublisherAsync(setup.pub) as publisher:
        await publisher.publish(Tick(n=1))
        assert await asyncio.wait_for(queue.get(), DEADLINE) == Tick(n=1)
        subscriber.stop()
        assert await asyncio.wait_for(listening, DEADLINE) is None
        # The listener stayed: an event published meanwhile comes with the next get.
        await publisher.publish(Tick(n=2))
        assert await subscriber.get(timeout=DEADLINE) == Tick(n=2)
    await subscriber.aclose()


@pytest.mark.anyio
async def test_async_subscribers_in_one_loop(setup):
    subscribers = [SubscriberAsync(setup.sub) for _ in range(5)]
    for k, s in enumerate(subscribers):
        s.subscribe(Done)
        s.subscribe(Tick, topic=f"w.{k}")
    async with PublisherAsync(setup.pub) as publisher:
        for n in range(50):
            await publisher.publish(Tick(n=n, about=f"w.{n % 5}"))
        await publisher.publish(Done())
    results = await asyncio.gather(*(until_done_async(s) for s in subscribers))
    assert [[e.n for e in r] for r in results] == [list(range(k, 50, 5)) for k in range(5)]
    for s in subscribers:
        await s.aclose()
