"""eric-juice: the orangeqs-juice messaging protocol over the eric broker.

Juice services publish typed events (`Event`, a pydantic model whose wire
type is its class name and which may name a `topic <Event.topic>`) through a
central proxy, here one eric channel, and subscribe to event types,
optionally filtered by topic. The protocol's classes, with its signatures:

- `SubscriberAsync` (alias `Subscriber`) and `SubscriberBlocking`:
  ``subscribe(event_type, *, topic=None)`` then ``get(timeout=None)``;
- `PublisherAsync` (alias `Publisher`) and `PublisherBlocking`:
  ``publish(event)``.

Their ``uri`` is ``http://HOST:PORT/CHANNEL``, or ``http://HOST:PORT`` for
the channel ``juice``; the channel is created on first use; a token comes
from ``ERIC_TOKEN`` when set. eric's refusals raise `EricError` (with
eric's ``code`` and the HTTP ``status``).

Layout:

- ``event``: `Event` and its form on the wire;
- ``endpoint``: the URI, and requests that create the channel on first use;
- ``errors``: `EricError`, `EricConnectionError`;
- ``sse``: the parser of eric's event streams;
- ``listener``: the durable listener behind a subscriber, and the reader
  loops (thread, task) that stream it and resume after a broken connection;
- ``subscriber``, ``publisher``: the protocol's classes.
"""

from .errors import EricConnectionError, EricError
from .event import Event, EventType
from .publisher import Publisher, PublisherAsync, PublisherBlocking
from .subscriber import Subscriber, SubscriberAsync, SubscriberBlocking

__all__ = [
    "Event",
    "EventType",
    "EricError",
    "EricConnectionError",
    "Publisher",
    "PublisherAsync",
    "PublisherBlocking",
    "Subscriber",
    "SubscriberAsync",
    "SubscriberBlocking",
]
