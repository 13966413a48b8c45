"""The URI naming a server and the channel that plays juice's central proxy,
and the HTTP requests both clients make to it."""

from __future__ import annotations

import functools
import os
from urllib.parse import quote, unquote, urlsplit

import httpx

from .errors import connection_error, error_from

#: The channel a URI without a path names.
DEFAULT_CHANNEL = "juice"

#: The environment variable a bearer token is read from.
TOKEN_VARIABLE = "ERIC_TOKEN"

#: Control requests are small and local; a stream sets its own read timeout.
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class Endpoint:
    """``http://HOST:PORT/CHANNEL``, or ``http://HOST:PORT`` for the channel
    ``juice``. The last path segment is the channel, so a server behind a
    path prefix is ``http://host/prefix/CHANNEL``."""

    def __init__(self, uri: str) -> None:
        if not isinstance(uri, str):
            raise TypeError(f"the uri must be a str, not {type(uri).__name__}")
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{uri!r} is not an http(s)://HOST:PORT[/CHANNEL] URI")
        segments = [s for s in parts.path.split("/") if s]
        self.channel = unquote(segments.pop()) if segments else DEFAULT_CHANNEL
        prefix = "".join(f"/{s}" for s in segments)
        self.uri = uri
        self.base = f"{parts.scheme}://{parts.netloc}{prefix}"
        token = os.environ.get(TOKEN_VARIABLE)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def url(self, *path: str) -> str:
        """``/v1/channels/{channel}/...`` with each segment escaped."""
        tail = "".join(f"/{quote(p, safe='')}" for p in path)
        return f"{self.base}/v1/channels/{quote(self.channel, safe='')}{tail}"

    def channels_url(self) -> str:
        return f"{self.base}/v1/channels"

    def sync_client(self, timeout: httpx.Timeout = REQUEST_TIMEOUT) -> httpx.Client:
        return httpx.Client(headers=self.headers, timeout=timeout, verify=ssl_context())

    def async_client(self, timeout: httpx.Timeout = REQUEST_TIMEOUT) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=self.headers, timeout=timeout, verify=ssl_context())

    # The channel is made on first use: a request that finds no channel
    # creates it (a concurrent creator's `channel_exists` is success) and is
    # sent once more, so a working setup pays no extra request.

    def call(
        self, client: httpx.Client, method: str, url: str, body: object = None
    ) -> httpx.Response:
        """A request whose channel is created if missing; raises EricError."""
        response = self._send(client, method, url, body)
        if _channel_missing(response):
            self._raise_for(
                self._send(client, "POST", self.channels_url(), {"id": self.channel}),
                tolerate="channel_exists",
            )
            response = self._send(client, method, url, body)
        self._raise_for(response)
        return response

    async def acall(
        self, client: httpx.AsyncClient, method: str, url: str, body: object = None
    ) -> httpx.Response:
        """`call` for async code."""
        response = await self._asend(client, method, url, body)
        if _channel_missing(response):
            created = await self._asend(client, "POST", self.channels_url(), {"id": self.channel})
            self._raise_for(created, tolerate="channel_exists")
            response = await self._asend(client, method, url, body)
        self._raise_for(response)
        return response

    @staticmethod
    def _send(client: httpx.Client, method: str, url: str, body: object) -> httpx.Response:
        try:
            return (
                client.request(method, url, json=body)
                if body is not None
                else client.request(method, url)
            )
        except httpx.TransportError as e:
            raise connection_error(e) from e

    @staticmethod
    async def _asend(
        client: httpx.AsyncClient, method: str, url: str, body: object
    ) -> httpx.Response:
        try:
            if body is not None:
                return await client.request(method, url, json=body)
            return await client.request(method, url)
        except httpx.TransportError as e:
            raise connection_error(e) from e

    @staticmethod
    def _raise_for(response: httpx.Response, tolerate: str | None = None) -> None:
        if response.is_success:
            return
        error = error_from(response)
        if error.code != tolerate:
            raise error


@functools.cache
def ssl_context():
    """One TLS context for every client: httpx would build one per client,
    which costs about 30 ms (it loads the CA bundle), as much as hundreds of
    requests."""
    return httpx.create_ssl_context()


def _channel_missing(response: httpx.Response) -> bool:
    return response.status_code == 404 and error_from(response).code == "channel_not_found"
