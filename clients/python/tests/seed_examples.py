"""juice's protocol examples, as its documentation writes them, apart from
the URI (a parameter here, "<uri>" there) and a stray ")" the
documentation's `subscribe` lines carry (a syntax error). Each example is
wrapped in a function so a test can run it; `print` and the classes are
the module's globals, so a test may observe them without changing the text.
"""

# ruff: noqa: E721  (the examples compare types with ==)

from eric_juice import Event, PublisherAsync, PublisherBlocking, SubscriberAsync, SubscriberBlocking


class KernelStatusChanged(Event):
    def topic(self) -> str:
        return self.service

    service: str
    status: str


class DummyEvent(Event):
    """The examples' event: a `data` field; its topic "something" unless
    a test publishes it about something else."""

    data: str
    about: str = "something"

    def topic(self) -> str:
        return self.about


async def subscriber_async_example(uri):
    subscriber = SubscriberAsync(uri)
    subscriber.subscribe(DummyEvent, topic="something")
    while True:
        event = await subscriber.get()
        assert type(event) == DummyEvent
        assert event.topic().startswith("something")
        print(f"Received {type(event)} with data {event}")


def subscriber_blocking_example(uri):
    subscriber = SubscriberBlocking(uri)
    subscriber.subscribe(DummyEvent, topic="something")
    subscriber.get()  # Blocking call to get the next event


async def publisher_async_example(uri):
    publisher = PublisherAsync(uri)
    await publisher.publish(DummyEvent(data="data"))


def publisher_blocking_example(uri):
    publisher = PublisherBlocking(uri)
    publisher.publish(DummyEvent(data="data"))
