"""A durable subscriber whose node is killed mid-stream.

The subscriber's URI names a node; the node is SIGKILLed while events flow
and a new node is started on the same port, as a load balancer (or a
process supervisor) puts a live node behind one address. The subscriber
reconnects to that address with `Last-Event-ID`: the listener and its
subscriptions live in Redis, so the new node resumes the stream with
exactly the events after the last one received, filtered as before. The
publisher, on another node, never stops."""

from __future__ import annotations

import asyncio
import threading

import pytest
from events import Done, Tick
from servers import Node, unique

from eric_juice import PublisherBlocking, SubscriberAsync, SubscriberBlocking

DEADLINE = 20.0


def test_a_killed_node_loses_and_repeats_nothing(redis):
    prefix = unique("durable")
    publishing_node = Node(redis_url=redis.url, prefix=prefix)
    streaming_node = Node(redis_url=redis.url, prefix=prefix)
    channel = unique("t")
    total = 1200
    subscriber = SubscriberBlocking(streaming_node.uri(channel))
    subscriber.subscribe(Done)
    subscriber.subscribe(Tick, topic="keep")

    def publish() -> None:
        with PublisherBlocking(publishing_node.uri(channel)) as publisher:
            for n in range(total):
                publisher.publish(Tick(n=n, about="keep" if n % 3 else "drop"))
            publisher.publish(Done())

    publisher = threading.Thread(target=publish)
    publisher.start()
    received: list[int] = []
    try:
        while len(received) < 100:
            received.append(subscriber.get(timeout=DEADLINE).n)
        streaming_node.kill()
        assert publisher.is_alive(), "the node must die while events flow"
        streaming_node = streaming_node.restarted()
        while not isinstance(event := subscriber.get(timeout=DEADLINE), Done):
            received.append(event.n)
        publisher.join()
    finally:
        subscriber.close()
        streaming_node.terminate()
        publishing_node.terminate()
    assert received == [n for n in range(total) if n % 3]


@pytest.mark.anyio
async def test_an_async_subscriber_survives_a_killed_node_too(redis):
    prefix = unique("durable")
    publishing_node = Node(redis_url=redis.url, prefix=prefix)
    streaming_node = Node(redis_url=redis.url, prefix=prefix)
    channel = unique("t")
    total = 900
    subscriber = SubscriberAsync(streaming_node.uri(channel))
    subscriber.subscribe(Done)
    subscriber.subscribe(Tick, topic="keep")

    def publish() -> None:
        with PublisherBlocking(publishing_node.uri(channel)) as publisher:
            for n in range(total):
                publisher.publish(Tick(n=n, about="keep" if n % 3 else "drop"))
            publisher.publish(Done())

    publisher = threading.Thread(target=publish)
    publisher.start()
    received: list[int] = []
    try:
        while len(received) < 100:
            received.append((await subscriber.get(timeout=DEADLINE)).n)
        await asyncio.to_thread(streaming_node.kill)
        assert publisher.is_alive(), "the node must die while events flow"
        streaming_node = await asyncio.to_thread(streaming_node.restarted)
        while not isinstance(event := await subscriber.get(timeout=DEADLINE), Done):
            received.append(event.n)
        await asyncio.to_thread(publisher.join)
    finally:
        await subscriber.aclose()
        streaming_node.terminate()
        publishing_node.terminate()
    assert received == [n for n in range(total) if n % 3]
