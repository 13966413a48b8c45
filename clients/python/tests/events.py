"""Event classes the tests publish and subscribe to."""

from __future__ import annotations

from eric_juice import Event


class Probe(Event):
    """One row of the matching table, published with the row's topic."""

    case: int
    about: str | None = None

    def topic(self) -> str | None:
        return self.about


class Tick(Event):
    """The n-th event of a sequence, about `about`."""

    n: int
    about: str | None = None

    def topic(self) -> str | None:
        return self.about


class Done(Event):
    """Published last, without a topic: every subscriber that subscribed to
    it without a filter has received everything published before it once
    it has received this (a listener's events keep their order)."""

    by: str = "test"


class Base(Event):
    value: int = 0


class Derived(Base):
    """Its wire type is `Derived`: a subscription to `Base` does not match it."""
