"""The durable eric listener behind a subscriber, and the loops that stream it.

A subscriber is one listener (a client-made uuid id) holding its
subscriptions. It is created by the first `subscribe`, with that
subscription, in one request: a listener with no subscriptions would receive
every broadcast, so none exists until there is something to filter on.
Later subscriptions are added to it (PATCH). Its events arrive on
``/v1/channels/{c}/listeners/{l}/events``; a broken stream is reopened with
``Last-Event-ID`` (on the same URI, so a node restarted behind it, or
another node behind a load balancer, takes over), and eric hands over
exactly the events after that id: none lost, none twice. The listener is
removed by `close` (or when the subscriber is garbage-collected or the
interpreter exits): until then eric keeps queueing its events, which is what
lets a subscriber outlive a node, and what a process killed without closing
leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import uuid

import httpx
from pydantic import ValidationError

from .endpoint import Endpoint
from .errors import EricError, connection_error, error_from
from .event import Event, subscription
from .sse import SseEvent, SseParser

log = logging.getLogger("eric_juice")

#: Events decoded ahead of `get`. A full queue stops the reader, so TCP
#: pushes back on eric, which keeps the rest queued for this listener (and
#: cuts a stream that stops moving; the reader then resumes where it was).
QUEUE_SIZE = 4096

#: eric sends a keep-alive comment after 15 s without data (its default
#: `http.keep_alive_secs`); a stream silent for longer is presumed dead.
STREAM_TIMEOUT = httpx.Timeout(10.0, connect=5.0, read=60.0)

#: Delays between reconnections: doubled after each failure, up to the cap.
FIRST_BACKOFF = 0.02
MAX_BACKOFF = 1.0

#: How long `close` waits for the reader to see its stream end.
CLOSE_WAIT = 5.0


class _Ended(Exception):
    """eric ended the stream (`eric-end`): the listener was stopped,
    removed, or its storage failed."""


class Listener:
    """One subscriber's listener: its id, the classes its events decode
    into, where its stream stands, and the calls that change it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.id = str(uuid.uuid4())
        #: Wire type → the class its events decode into.
        self.classes: dict[str, type[Event]] = {}
        #: Whether eric has the listener (after the first subscribe).
        self.created = False
        #: Set by close: the readers stop instead of reconnecting.
        self.closing = False
        #: The id of the last event handed to the consumer: where a
        #: reconnection resumes.
        self.last_id: str | None = None
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def subscribe(self, event_type: type[Event], topic: str | None) -> None:
        """Adds a subscription; eric applies it before this returns."""
        entry = subscription(event_type, topic)
        name = entry["type"]
        with self._lock:
            if self.closing:
                raise RuntimeError("the subscriber is closed")
            known = self.classes.get(name)
            if known is not None and known is not event_type:
                raise ValueError(
                    f"two classes are named {name!r} ({known!r} and {event_type!r}): "
                    "events of that type could not be told apart"
                )
            # Known before eric is told: the stream may carry a matching
            # event before eric's answer arrives.
            self.classes[name] = event_type
            try:
                if self._client is None:
                    self._client = self.endpoint.sync_client()
                if self.created:
                    url = self.endpoint.url("listeners", self.id, "subscriptions")
                    self.endpoint.call(self._client, "PATCH", url, {"add": [entry]})
                else:
                    body = {"id": self.id, "subscriptions": [entry]}
                    self.endpoint.call(self._client, "POST", self.endpoint.url("listeners"), body)
                    self.created = True
            except BaseException:
                if known is None:
                    del self.classes[name]
                raise

    def remove(self) -> None:
        """Deletes the listener (blocking); a failure is logged, not raised:
        this runs from close, finalizers and interpreter exit."""
        with self._lock:
            self.closing = True
            client, self._client = self._client, None
            if not self.created:
                if client is not None:
                    client.close()
                return
            client = client or self.endpoint.sync_client()
        try:
            response = client.delete(self.endpoint.url("listeners", self.id))
            if not response.is_success and response.status_code != 404:
                log.warning("eric_juice: removing listener %s: %s", self.id, error_from(response))
        except httpx.TransportError as e:
            log.warning("eric_juice: removing listener %s: %s", self.id, connection_error(e))
        finally:
            client.close()

    async def aremove(self) -> None:
        """`remove` for async code."""
        with self._lock:
            self.closing = True
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if not self.created:
            return
        async with self.endpoint.async_client() as aclient:
            try:
                response = await aclient.delete(self.endpoint.url("listeners", self.id))
                if not response.is_success and response.status_code != 404:
                    log.warning(
                        "eric_juice: removing listener %s: %s", self.id, error_from(response)
                    )
            except httpx.TransportError as e:
                log.warning("eric_juice: removing listener %s: %s", self.id, connection_error(e))

    # -- the stream ----------------------------------------------------

    def stream_url(self) -> str:
        return self.endpoint.url("listeners", self.id, "events")

    def stream_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        return headers

    def decode(self, sse: SseEvent) -> Event | None:
        """The event an SSE event carries, or None for a notice or a type
        this subscriber has no class for; raises `_Ended` at `eric-end`."""
        if sse.id is None:
            if sse.event == "eric-end":
                raise _Ended(_reason(sse.data))
            if sse.event == "eric-gap":
                log.warning(
                    "eric_juice: listener %s lost events after id %s (they left eric's replay window)",
                    self.id,
                    self.last_id,
                )
            return None
        cls = self.classes.get(sse.event)
        if cls is None:
            return None
        try:
            return cls.model_validate_json(sse.data)
        except ValidationError as e:
            log.warning(
                "eric_juice: event %s (%s) does not fit %s, skipped: %s", sse.id, sse.event, cls, e
            )
            return None


def _reason(data: bytes) -> str:
    try:
        return str(json.loads(data)["reason"])
    except (ValueError, KeyError, TypeError):
        return "unknown"


def _fatal(response: httpx.Response) -> EricError | None:
    """The error that ends a subscriber, or None for one worth retrying:
    a 4xx will not change by asking again (the listener is gone, the
    token is refused), a 5xx (storage unavailable, timeout) may."""
    error = error_from(response)
    return error if 400 <= response.status_code < 500 else None


class Failure:
    """A reader's fatal error, queued for `get` to raise."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_blocking(listener: Listener, events: queue.Queue, wake: threading.Event) -> None:
    """The blocking subscriber's reader thread: streams the listener into
    `events` until it is closed; a fatal error is queued as a `Failure`."""
    try:
        with listener.endpoint.sync_client(STREAM_TIMEOUT) as client:
            backoff = FIRST_BACKOFF
            while not listener.closing:
                try:
                    with client.stream(
                        "GET", listener.stream_url(), headers=listener.stream_headers()
                    ) as response:
                        if response.status_code != 200:
                            response.read()
                            fatal = _fatal(response)
                            if fatal is not None and not listener.closing:
                                raise fatal
                            log.info(
                                "eric_juice: stream of %s: %s", listener.id, error_from(response)
                            )
                        else:
                            backoff = FIRST_BACKOFF
                            parser = SseParser()
                            for chunk in response.iter_bytes():
                                for sse in parser.feed(chunk):
                                    event = listener.decode(sse)
                                    if event is not None and not _put(events, event, listener):
                                        return
                                    if sse.id is not None:
                                        listener.last_id = sse.id
                except _Ended as end:
                    log.info("eric_juice: stream of %s ended (%s)", listener.id, end)
                except httpx.TransportError as e:
                    log.info("eric_juice: stream of %s broke: %s", listener.id, connection_error(e))
                if listener.closing:
                    return
                wake.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
    except EricError as e:
        _put(events, Failure(e), listener)
    except BaseException as e:  # a bug here must reach `get`, not die with the thread
        _put(events, Failure(e), listener)
        raise


def _put(events: queue.Queue, item: object, listener: Listener) -> bool:
    """Queues `item`, waiting while the queue is full; False once closed.
    The wait is cut in slices so a reader held by a consumer that stopped
    taking events still sees `close`."""
    while True:
        try:
            events.put(item, timeout=0.1)
            return True
        except queue.Full:
            if listener.closing:
                return False


async def read_async(listener: Listener, events: asyncio.Queue, subscribed: asyncio.Event) -> None:
    """The async subscriber's reader task: waits for a first subscription,
    then streams the listener into `events` until closed or cancelled
    (`stop`); a fatal error ends the task with it."""
    if not listener.created:
        await subscribed.wait()
    async with listener.endpoint.async_client(STREAM_TIMEOUT) as client:
        backoff = FIRST_BACKOFF
        while not listener.closing:
            try:
                async with client.stream(
                    "GET", listener.stream_url(), headers=listener.stream_headers()
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        fatal = _fatal(response)
                        if fatal is not None and not listener.closing:
                            raise fatal
                        log.info("eric_juice: stream of %s: %s", listener.id, error_from(response))
                    else:
                        backoff = FIRST_BACKOFF
                        parser = SseParser()
                        async for chunk in response.aiter_bytes():
                            for sse in parser.feed(chunk):
                                event = listener.decode(sse)
                                if event is not None:
                                    await events.put(event)
                                # Only once queued: a reader cancelled while
                                # waiting to queue resumes before this event.
                                if sse.id is not None:
                                    listener.last_id = sse.id
            except _Ended as end:
                log.info("eric_juice: stream of %s ended (%s)", listener.id, end)
            except httpx.TransportError as e:
                log.info("eric_juice: stream of %s broke: %s", listener.id, connection_error(e))
            if listener.closing:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
