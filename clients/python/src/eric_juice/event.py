"""`Event`: what juice services publish, and its form on the wire."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel


class Event(BaseModel):
    """An event published to juice services.

    Subclasses declare fields (a pydantic v2 model) and may override
    `topic` so subscribers can filter events of one type. On the wire the
    event's type is its class name, its payload ``model_dump(mode="json")``
    and its topic what `topic` returns. A subscriber decodes an event into
    the class it subscribed with that name, so publisher and subscriber
    share the class (or classes of the same name and fields).

    Example::

        class KernelStatusChanged(Event):
            def topic(self) -> str:
                return self.service

            service: str
            status: str
    """

    def topic(self) -> str | None:
        """The topic subscribers filter on: 1 to 256 bytes, no CR, LF or
        NUL; ``a.b`` falls under the filters ``a.b`` and ``a``. None (the
        default): no topic, so only subscriptions without a filter match."""
        return None


EventType = TypeVar("EventType", bound=Event)


def type_name(event_type: type[Event]) -> str:
    """The wire type of a class of events; refuses anything but a subclass."""
    if not (isinstance(event_type, type) and issubclass(event_type, Event)):
        raise TypeError(f"{event_type!r} is not a subclass of eric_juice.Event")
    return event_type.__name__


def message_body(event: Event) -> dict[str, object]:
    """The `/v1` message an event is published as."""
    if not isinstance(event, Event):
        raise TypeError(f"{event!r} is not an eric_juice.Event")
    body: dict[str, object] = {
        "type": type_name(type(event)),
        "payload": event.model_dump(mode="json"),
    }
    topic = event.topic()
    if topic is not None:
        body["topic"] = topic
    return body


def subscription(event_type: type[Event], topic: str | None) -> dict[str, str]:
    """The `/v1` subscription to `event_type`, filtered by `topic`."""
    if topic is not None and not isinstance(topic, str):
        raise TypeError(f"a topic filter is a str, not {type(topic).__name__}")
    entry = {"type": type_name(event_type)}
    if topic is not None:
        entry["topic"] = topic
    return entry
