"""The parts that need no server: URIs, the wire form of events, the SSE
parser, and what subscribe refuses before asking eric."""

from __future__ import annotations

import inspect

import pytest
from events import Base, Derived, Tick

import eric_juice
from eric_juice.endpoint import Endpoint
from eric_juice.event import message_body
from eric_juice.sse import SseEvent, SseParser


def test_the_protocol_classes_are_importable_with_their_aliases():
    assert issubclass(eric_juice.Subscriber, eric_juice.SubscriberAsync)
    assert issubclass(eric_juice.Publisher, eric_juice.PublisherAsync)
    for name in [
        "Event",
        "SubscriberAsync",
        "SubscriberBlocking",
        "PublisherAsync",
        "PublisherBlocking",
        "EricError",
    ]:
        assert hasattr(eric_juice, name)


@pytest.mark.parametrize(
    ("uri", "base", "channel"),
    [
        ("http://h:1", "http://h:1", "juice"),
        ("http://h:1/", "http://h:1", "juice"),
        ("http://h:1/kernels", "http://h:1", "kernels"),
        ("http://h:1/kernels/", "http://h:1", "kernels"),
        ("https://h/eric/my%20events", "https://h/eric", "my events"),
    ],
)
def test_the_last_path_segment_is_the_channel_and_none_is_juice(uri, base, channel):
    endpoint = Endpoint(uri)
    assert (endpoint.base, endpoint.channel) == (base, channel)


def test_a_channel_is_escaped_in_paths():
    assert (
        Endpoint("http://h:1/a%2Fb").url("listeners", "x y")
        == "http://h:1/v1/channels/a%2Fb/listeners/x%20y"
    )


@pytest.mark.parametrize("uri", ["h:1/juice", "ftp://h/juice", "http:///juice"])
def test_a_uri_that_is_not_http_is_refused(uri):
    with pytest.raises(ValueError):
        Endpoint(uri)


def test_a_token_comes_from_eric_token(monkeypatch):
    monkeypatch.setenv("ERIC_TOKEN", "s3cret")
    assert Endpoint("http://h:1").headers == {"Authorization": "Bearer s3cret"}
    monkeypatch.delenv("ERIC_TOKEN")
    assert Endpoint("http://h:1").headers == {}


def test_an_event_travels_as_its_class_name_its_json_dump_and_its_topic():
    assert message_body(Tick(n=1, about="a.b")) == {
        "type": "Tick",
        "payload": {"n": 1, "about": "a.b"},
        "topic": "a.b",
    }
    assert message_body(Tick(n=2)) == {"type": "Tick", "payload": {"n": 2, "about": None}}
    assert message_body(Derived(value=3))["type"] == "Derived"


def test_only_events_are_published_or_subscribed():
    with pytest.raises(TypeError):
        message_body({"type": "x"})  # type: ignore[arg-type]
    subscriber = eric_juice.SubscriberBlocking("http://127.0.0.1:9")
    with pytest.raises(TypeError):
        subscriber.subscribe(dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        subscriber.subscribe(Base, topic=3)  # type: ignore[arg-type]
    subscriber.close()


def test_the_parser_reads_eric_events_split_anywhere():
    stream = (
        b"retry: 5\n: connected\n\n"
        b'id: 1\nevent: greet\ndata: {"a":1}\n\n'
        b'id: 2\nevent: status\ntopic: kernel.q1\ndata: "idle"\n\n'
        b": keep-alive\n\n"
        b"id: 3\nevent: multi\ndata: [1,\ndata: 2]\n\n"
        b'event: eric-gap\ndata: {"after":1}\n\n'
        b'event: eric-end\ndata: {"reason":"stopped"}\n\n'
    )
    expected = [
        SseEvent("greet", b'{"a":1}', "1"),
        SseEvent("status", b'"idle"', "2", "kernel.q1"),
        SseEvent("multi", b"[1,\n2]", "3"),
        SseEvent("eric-gap", b'{"after":1}'),
        SseEvent("eric-end", b'{"reason":"stopped"}'),
    ]
    for size in [1, 2, 7, len(stream)]:
        parser = SseParser()
        events = []
        for i in range(0, len(stream), size):
            events += parser.feed(stream[i : i + size])
        assert events == expected, size
        assert parser.retry_ms == 5


@pytest.mark.parametrize(
    ("member", "signature"),
    [
        (
            eric_juice.SubscriberAsync.__init__,
            "(self, uri: 'str', *, queue: 'asyncio.Queue[EventType] | None' = None) -> 'None'",
        ),
        (
            eric_juice.SubscriberAsync.subscribe,
            "(self, event_type: 'type[EventType]', *, topic: 'str | None' = None) -> 'None'",
        ),
        (eric_juice.SubscriberAsync.get, "(self, timeout: 'float | None' = None) -> 'EventType'"),
        (eric_juice.SubscriberAsync.listen, "(self) -> 'None'"),
        (eric_juice.SubscriberAsync.stop, "(self) -> 'None'"),
        (eric_juice.SubscriberBlocking.__init__, "(self, uri: 'str', /) -> 'None'"),
        (
            eric_juice.SubscriberBlocking.subscribe,
            "(self, event_type: 'type[EventType]', /, *, topic: 'str | None' = None) -> 'None'",
        ),
        (
            eric_juice.SubscriberBlocking.get,
            "(self, timeout: 'float | None' = None) -> 'EventType'",
        ),
        (eric_juice.PublisherAsync.__init__, "(self, uri: 'str') -> 'None'"),
        (eric_juice.PublisherAsync.publish, "(self, event: 'Event') -> 'None'"),
        (eric_juice.PublisherBlocking.__init__, "(self, uri: 'str') -> 'None'"),
        (eric_juice.PublisherBlocking.publish, "(self, event: 'Event') -> 'None'"),
        (eric_juice.Event.topic, "(self) -> 'str | None'"),
    ],
)
def test_the_signatures_are_juice_s(member, signature):
    assert str(inspect.signature(member)) == signature


def test_the_async_classes_are_what_they_say():
    assert inspect.iscoroutinefunction(eric_juice.SubscriberAsync.get)
    assert inspect.iscoroutinefunction(eric_juice.SubscriberAsync.listen)
    assert inspect.iscoroutinefunction(eric_juice.PublisherAsync.publish)
    assert not inspect.iscoroutinefunction(eric_juice.SubscriberAsync.subscribe)
    assert not inspect.iscoroutinefunction(eric_juice.SubscriberAsync.stop)
    assert isinstance(eric_juice.SubscriberAsync.queue, property)
