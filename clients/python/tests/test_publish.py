"""Publishers: what reaches eric, the channel made on first use, and
eric's refusals as typed errors. Observed through a plain eric listener
(no subscriptions: it receives every broadcast)."""

from __future__ import annotations

import threading

import httpx
import pytest
from events import Tick
from servers import TOKEN, free_port, unique

from eric_juice import EricConnectionError, EricError, PublisherAsync, PublisherBlocking

CLIENT = httpx.Client()


def plain_listener(base: str, channel: str) -> str:
    """A started listener without subscriptions on `channel` (made here)."""
    httpx.post(f"{base}/v1/channels", json={"id": channel}).raise_for_status()
    listener = f"{base}/v1/channels/{channel}/listeners/plain"
    httpx.post(f"{base}/v1/channels/{channel}/listeners", json={"id": "plain"}).raise_for_status()
    httpx.post(f"{listener}/start").raise_for_status()
    return listener


def take(listener: str) -> dict:
    response = CLIENT.post(f"{listener}/next")
    assert response.status_code == 200, response.text
    return response.json()["message"]


def test_a_blocking_publish_makes_the_channel_and_sends_type_payload_and_topic(setup):
    with PublisherBlocking(setup.pub) as publisher:
        publisher.publish(Tick(n=0))  # no channel yet: made on first use
    assert httpx.get(f"{setup.base_sub}/v1/channels/{setup.channel}").status_code == 200


def test_published_events_reach_a_listener_as_sent(setup):
    listener = plain_listener(setup.base_sub, setup.channel)
    with PublisherBlocking(setup.pub) as publisher:
        publisher.publish(Tick(n=1, about="lab.fridge-1"))
        publisher.publish(Tick(n=2))
    first, second = take(listener), take(listener)
    assert first["type"] == "Tick" and first["payload"] == {"n": 1, "about": "lab.fridge-1"}
    assert first.get("topic") == "lab.fridge-1"
    assert second["payload"] == {"n": 2, "about": None} and second.get("topic") is None


@pytest.mark.anyio
async def test_an_async_publish_makes_the_channel_and_publishes(setup):
    async with PublisherAsync(setup.pub) as publisher:
        await publisher.publish(Tick(n=0))
        await publisher.publish(Tick(n=1, about="a"))
    assert httpx.get(f"{setup.base_sub}/v1/channels/{setup.channel}").status_code == 200


def test_publishers_in_plain_threads(setup):
    listener = plain_listener(setup.base_sub, setup.channel)

    def publish(start: int) -> None:
        with PublisherBlocking(setup.pub) as publisher:
            for n in range(start, start + 20):
                publisher.publish(Tick(n=n))

    threads = [threading.Thread(target=publish, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = sorted(take(listener)["payload"]["n"] for _ in range(80))
    assert got == sorted(k * 100 + i for k in range(4) for i in range(20))


class BadTopic(Tick):
    def topic(self) -> str | None:
        return "bad\nline"


def test_an_invalid_topic_is_eric_s_invalid_topic(setup):
    with PublisherBlocking(setup.pub) as publisher, pytest.raises(EricError) as refused:
        publisher.publish(BadTopic(n=1))
    assert (refused.value.code, refused.value.status) == ("invalid_topic", 400)


@pytest.mark.anyio
async def test_an_async_publish_raises_eric_s_error(setup):
    async with PublisherAsync(setup.pub) as publisher:
        with pytest.raises(EricError) as refused:
            await publisher.publish(BadTopic(n=1))
    assert refused.value.code == "invalid_topic"


def test_an_unreachable_server_is_a_connection_error():
    with PublisherBlocking(f"http://127.0.0.1:{free_port()}/x") as publisher:
        with pytest.raises(EricConnectionError) as failed:
            publisher.publish(Tick(n=1))
    assert failed.value.code == "connection_failed" and isinstance(failed.value, ConnectionError)


def test_the_token_comes_from_eric_token(guarded_node, monkeypatch):
    uri = guarded_node.uri(unique("t"))
    monkeypatch.delenv("ERIC_TOKEN", raising=False)
    with PublisherBlocking(uri) as publisher, pytest.raises(EricError) as refused:
        publisher.publish(Tick(n=1))
    assert (refused.value.code, refused.value.status) == ("unauthorized", 401)
    monkeypatch.setenv("ERIC_TOKEN", TOKEN)
    with PublisherBlocking(uri) as publisher:
        publisher.publish(Tick(n=1))
