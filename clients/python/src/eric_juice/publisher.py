"""`PublisherAsync` and `PublisherBlocking`: juice's publishers, each event
one broadcast on the channel (eric delivers it to the listeners whose
subscriptions match)."""

from __future__ import annotations

import weakref

import httpx

from .endpoint import Endpoint
from .event import Event, message_body


class PublisherAsync:
    """Asynchronous client for publishing events to other juice services.

    ``uri`` is ``http://HOST:PORT/CHANNEL`` (``http://HOST:PORT``: the
    channel ``juice``), created on first use.

    Example::

        publisher = PublisherAsync("http://127.0.0.1:8080")
        await publisher.publish(DummyEvent(data="data"))
    """

    def __init__(self, uri: str) -> None:
        self._endpoint = Endpoint(uri)
        self._client: httpx.AsyncClient | None = None

    async def publish(self, event: Event) -> None:
        """Publish an event; returns once eric has queued it for every
        matching subscriber. Raises `EricError` when eric refuses it
        (``invalid_topic``, ``unauthorized``, ...)."""
        body = message_body(event)
        if self._client is None:
            self._client = self._endpoint.async_client()
        await self._endpoint.acall(self._client, "POST", self._endpoint.url("messages"), body)

    async def aclose(self) -> None:
        """Close its connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> PublisherAsync:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PublisherBlocking:
    """Synchronous blocking client for publishing events to other juice
    services, usable from any thread.

    ``uri`` is ``http://HOST:PORT/CHANNEL`` (``http://HOST:PORT``: the
    channel ``juice``), created on first use.

    Example::

        publisher = PublisherBlocking("http://127.0.0.1:8080")
        publisher.publish(DummyEvent(data="data"))
    """

    def __init__(self, uri: str) -> None:
        self._endpoint = Endpoint(uri)
        self._client = self._endpoint.sync_client()
        # juice's examples never close a publisher: its connections close
        # when it is collected.
        self._close = weakref.finalize(self, self._client.close)

    def publish(self, event: Event) -> None:
        """Publish an event; returns once eric has queued it for every
        matching subscriber. Raises `EricError` when eric refuses it
        (``invalid_topic``, ``unauthorized``, ...)."""
        body = message_body(event)
        self._endpoint.call(self._client, "POST", self._endpoint.url("messages"), body)

    def close(self) -> None:
        """Close its connections."""
        self._close()

    def __enter__(self) -> PublisherBlocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Publisher(PublisherAsync):
    """Asynchronous client for publishing events to other juice services:
    `PublisherAsync`, under juice's default name."""
