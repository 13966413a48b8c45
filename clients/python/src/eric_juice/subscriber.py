"""`SubscriberAsync` and `SubscriberBlocking`: juice's subscribers, each one
durable eric listener (see `listener` for its life)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import weakref
from typing import Generic

from .endpoint import Endpoint
from .event import EventType
from .listener import CLOSE_WAIT, QUEUE_SIZE, Failure, Listener, read_async, read_blocking


class SubscriberAsync(Generic[EventType]):
    """Asynchronous client for subscribing to events from other juice services.

    The subscriber receives nothing until it subscribes (`subscribe`).
    ``uri`` is ``http://HOST:PORT/CHANNEL`` (``http://HOST:PORT``: the
    channel ``juice``); ``queue``, if given, is where received events are
    put (deprecated, see `queue`).

    Example::

        subscriber = SubscriberAsync("http://127.0.0.1:8080")
        subscriber.subscribe(DummyEvent, topic="something")
        while True:
            event = await subscriber.get()
            print(f"Received {type(event)} with data {event}")

    `aclose` (or ``async with``) removes eric's listener; a subscriber
    dropped without it has its listener removed when it is garbage-collected
    or at interpreter exit.
    """

    def __init__(self, uri: str, *, queue: asyncio.Queue[EventType] | None = None) -> None:
        self._listener = Listener(Endpoint(uri))
        self._queue: asyncio.Queue[EventType] = (
            queue if queue is not None else asyncio.Queue(maxsize=QUEUE_SIZE)
        )
        self._task: asyncio.Task[None] | None = None
        #: Set by the first subscribe, which the reader waits for; made in
        #: the reader's loop.
        self._subscribed: asyncio.Event | None = None
        self._stop_requested = False
        self._finalizer = weakref.finalize(self, self._listener.remove)

    @property
    def queue(self) -> asyncio.Queue[EventType]:
        """Queue to which `listen` puts new events.

        Deprecated, use `get` to retrieve events instead.
        """
        return self._queue

    def subscribe(self, event_type: type[EventType], *, topic: str | None = None) -> None:
        """Subscribe to events of ``event_type`` (exactly that class, not its
        subclasses) whose topic is ``topic`` or below it (``a.b`` matches
        topics ``a.b`` and ``a.b.c``, not ``a.c`` nor ``a.bb``); without a
        topic, to all of them.

        In effect when it returns: an event published afterwards is received.
        This is a plain method, as juice's protocol defines it, so it makes
        its one HTTP request synchronously (a local round trip that blocks
        the event loop for that long). Raises `EricError` when eric refuses
        (``invalid_topic``, ``too_many_subscriptions``, ...).
        """
        self._listener.subscribe(event_type, topic)
        subscribed, task = self._subscribed, self._task
        if subscribed is not None and task is not None and not task.done():
            loop = task.get_loop()
            try:
                same_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                same_loop = False
            if same_loop:
                subscribed.set()
            else:
                loop.call_soon_threadsafe(subscribed.set)

    async def get(self, timeout: float | None = None) -> EventType:
        """The next event, waiting for it at most ``timeout`` seconds (None:
        for ever); raises `TimeoutError` when none came, or the `EricError`
        that ended the subscription (its listener removed, its token
        refused)."""
        task = self._reader()
        if not self._queue.empty():
            return self._queue.get_nowait()
        deadline = None if timeout is None else time.monotonic() + timeout
        getter = asyncio.ensure_future(self._queue.get())
        try:
            waiting: set[asyncio.Future] = {getter, task}
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = await asyncio.wait(
                    waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    return getter.result()
                if task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                    # Stopped (`stop`): what is queued is still handed out.
                    waiting = {getter}
                elif not done:
                    raise TimeoutError(f"no event within {timeout} s")
        finally:
            if not getter.done():
                getter.cancel()

    async def listen(self) -> None:
        """Put new events in `queue` until `stop` is called.

        Deprecated, use `get` to retrieve events instead.
        """
        task = self._reader()
        try:
            await task
        except asyncio.CancelledError:
            if not (self._stop_requested and task.cancelled()):
                raise

    def stop(self) -> None:
        """Stop listening for new events: `listen` returns. The listener
        stays (a later `listen` or `get` resumes where this one stopped).

        Deprecated, use `get` to retrieve events instead.
        """
        self._stop_requested = True
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        """Stop reading and remove eric's listener and its queued events."""
        self._finalizer.detach()
        await self._listener.aremove()
        task = self._task
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            # The listener is gone, so nothing the reader holds is worth
            # waiting for: cancelling it closes its connection now.
            task.cancel()
            await asyncio.wait({task})

    def close(self) -> None:
        """`aclose` for code outside the event loop (it blocks)."""
        self._finalizer()
        task = self._task
        if task is not None and not task.get_loop().is_closed():
            task.get_loop().call_soon_threadsafe(task.cancel)

    async def __aenter__(self) -> SubscriberAsync[EventType]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _reader(self) -> asyncio.Task[None]:
        """The task streaming the listener into the queue, started in the
        running loop unless it runs or has failed (its error is kept for
        `get` to raise)."""
        loop = asyncio.get_running_loop()
        task = self._task
        failed = (
            task is not None
            and task.done()
            and not task.cancelled()
            and task.exception() is not None
        )
        if task is None or task.get_loop() is not loop or (task.done() and not failed):
            self._stop_requested = False
            self._subscribed = asyncio.Event()
            task = loop.create_task(read_async(self._listener, self._queue, self._subscribed))
            self._task = task
        return task


class SubscriberBlocking(Generic[EventType]):
    """Synchronous blocking client for subscribing to events from other juice
    services, usable from any thread (no event loop needed).

    The subscriber receives nothing until it subscribes (`subscribe`).
    ``uri`` is ``http://HOST:PORT/CHANNEL`` (``http://HOST:PORT``: the
    channel ``juice``).

    Example::

        subscriber = SubscriberBlocking("http://127.0.0.1:8080")
        subscriber.subscribe(DummyEvent, topic="something")
        subscriber.get()  # blocks until the next event

    A thread of its own reads the stream from the first subscription on.
    `close` (or ``with``) removes eric's listener; a subscriber dropped
    without it has its listener removed when it is garbage-collected or at
    interpreter exit.
    """

    def __init__(self, uri: str, /) -> None:
        self._listener = Listener(Endpoint(uri))
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_SIZE)
        self._wake = threading.Event()
        #: The reader thread, once started (a list the finalizer shares).
        self._thread: list[threading.Thread] = []
        self._start = threading.Lock()
        # The reader thread holds the listener, not the subscriber, so a
        # dropped subscriber is collected and its finalizer stops the thread.
        self._finalizer = weakref.finalize(
            self, _close_blocking, self._listener, self._wake, self._thread
        )

    def subscribe(self, event_type: type[EventType], /, *, topic: str | None = None) -> None:
        """Subscribe to events of ``event_type`` (exactly that class, not its
        subclasses) whose topic is ``topic`` or below it (``a.b`` matches
        topics ``a.b`` and ``a.b.c``, not ``a.c`` nor ``a.bb``); without a
        topic, to all of them.

        In effect when it returns: an event published afterwards is received.
        Raises `EricError` when eric refuses (``invalid_topic``,
        ``too_many_subscriptions``, ...).
        """
        self._listener.subscribe(event_type, topic)
        with self._start:
            if not self._thread:
                thread = threading.Thread(
                    target=read_blocking,
                    args=(self._listener, self._queue, self._wake),
                    name=f"eric-juice-{self._listener.id}",
                    daemon=True,
                )
                thread.start()
                self._thread.append(thread)

    def get(self, timeout: float | None = None) -> EventType:
        """The next event, waiting for it at most ``timeout`` seconds (None:
        for ever); raises `TimeoutError` when none came, or the `EricError`
        that ended the subscription (its listener removed, its token
        refused)."""
        try:
            if timeout is not None and timeout <= 0:
                item = self._queue.get_nowait()
            else:
                item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None
        if type(item) is Failure:
            self._queue.put(item)  # every later get raises it too
            raise item.error
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop reading and remove eric's listener and its queued events."""
        self._finalizer()

    def __enter__(self) -> SubscriberBlocking[EventType]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_blocking(
    listener: Listener, wake: threading.Event, thread: list[threading.Thread]
) -> None:
    listener.remove()
    wake.set()
    # Removing the listener ended its stream: the reader sees it and stops.
    for reader in thread:
        if reader is not threading.current_thread():
            reader.join(CLOSE_WAIT)


class Subscriber(SubscriberAsync[EventType]):
    """Asynchronous client for subscribing to events from other juice
    services: `SubscriberAsync`, under juice's default name."""
