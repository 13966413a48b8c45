"""juice's own examples (seed_examples.py), run against eric. The tests
observe them through the module's globals (its `print`, and subscriber
classes that say when `subscribe` returned), never by editing them."""

from __future__ import annotations

import asyncio
import threading

import pytest
import seed_examples
from events import Done
from seed_examples import DummyEvent, KernelStatusChanged

from eric_juice import PublisherAsync, PublisherBlocking, SubscriberAsync, SubscriberBlocking

DEADLINE = 10.0


class SeenSubscribing:
    """Makes the examples' subscriber classes report the instance made and
    the moment its `subscribe` returned."""

    def __init__(self, monkeypatch) -> None:
        self.subscribed = threading.Event()
        self.instances: list = []
        seen = self

        class Async(SubscriberAsync):
            def subscribe(self, *args, **kwargs):
                super().subscribe(*args, **kwargs)
                seen.instances.append(self)
                seen.subscribed.set()

        class Blocking(SubscriberBlocking):
            def subscribe(self, *args, **kwargs):
                super().subscribe(*args, **kwargs)
                seen.instances.append(self)
                seen.subscribed.set()

            def get(self, timeout=None):
                event = super().get(timeout)
                seen.got = event
                return event

        monkeypatch.setattr(seed_examples, "SubscriberAsync", Async)
        monkeypatch.setattr(seed_examples, "SubscriberBlocking", Blocking)


@pytest.mark.anyio
async def test_the_async_subscriber_example(setup, monkeypatch):
    seen = SeenSubscribing(monkeypatch)
    printed: list[str] = []
    two = asyncio.Event()

    def collect(line: str) -> None:
        printed.append(line)
        if len(printed) == 2:
            two.set()

    monkeypatch.setattr(seed_examples, "print", collect, raising=False)
    example = asyncio.ensure_future(seed_examples.subscriber_async_example(setup.sub))
    await asyncio.sleep(0)  # the example runs up to its first await: subscribe has returned
    assert seen.subscribed.is_set()
    async with PublisherAsync(setup.pub) as publisher:
        await publisher.publish(DummyEvent(data="elsewhere", about="other"))
        await publisher.publish(DummyEvent(data="a"))
        await publisher.publish(DummyEvent(data="b", about="something.deeper"))
    printed_two = asyncio.ensure_future(two.wait())
    done, _ = await asyncio.wait(
        {example, printed_two}, timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED
    )
    example.cancel()
    printed_two.cancel()
    await seen.instances[0].aclose()
    assert printed_two in done, f"the example printed {printed} (its task: {example})"
    cls = "<class 'seed_examples.DummyEvent'>"
    assert printed == [
        f"Received {cls} with data data='a' about='something'",
        f"Received {cls} with data data='b' about='something.deeper'",
    ]


def test_the_blocking_subscriber_example(setup, monkeypatch):
    seen = SeenSubscribing(monkeypatch)
    example = threading.Thread(target=seed_examples.subscriber_blocking_example, args=(setup.sub,))
    example.start()
    assert seen.subscribed.wait(DEADLINE)
    with PublisherBlocking(setup.pub) as publisher:
        publisher.publish(DummyEvent(data="elsewhere", about="other"))
        publisher.publish(DummyEvent(data="here"))
    example.join(DEADLINE)
    assert not example.is_alive()
    assert seen.got == DummyEvent(data="here")
    seen.instances[0].close()


def test_the_publisher_examples(setup):
    with SubscriberBlocking(setup.sub) as subscriber:
        subscriber.subscribe(DummyEvent, topic="something")
        seed_examples.publisher_blocking_example(setup.pub)
        asyncio.run(seed_examples.publisher_async_example(setup.pub))
        assert subscriber.get(timeout=DEADLINE) == DummyEvent(data="data")
        assert subscriber.get(timeout=DEADLINE) == DummyEvent(data="data")


def test_kernel_status_changed_filtered_by_service(setup):
    with SubscriberBlocking(setup.sub) as one, SubscriberBlocking(setup.sub) as every:
        one.subscribe(Done)
        one.subscribe(KernelStatusChanged, topic="q1")
        every.subscribe(Done)
        every.subscribe(KernelStatusChanged)
        with PublisherBlocking(setup.pub) as publisher:
            for service, status in [
                ("q1", "busy"),
                ("q2", "busy"),
                ("q1", "idle"),
                ("q10", "idle"),
            ]:
                publisher.publish(KernelStatusChanged(service=service, status=status))
            publisher.publish(Done())
        assert [(e.service, e.status) for e in _until_done(one)] == [("q1", "busy"), ("q1", "idle")]
        assert [e.service for e in _until_done(every)] == ["q1", "q2", "q1", "q10"]


def _until_done(subscriber):
    events = []
    while not isinstance(event := subscriber.get(timeout=DEADLINE), Done):
        events.append(event)
    return events
