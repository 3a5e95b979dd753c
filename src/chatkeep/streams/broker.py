"""The broker interface: append-only event streams with cursors, expiry, and small flags."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from chatkeep.config import Settings
from chatkeep.errors import ChatkeepError


@dataclass(frozen=True, slots=True)
class Event:
    """One stream item. `id` ("<ms>-<n>", as in Redis Streams) is the cursor to resume after."""

    id: str
    type: str
    data: dict[str, Any]


def cursor_key(cursor: str) -> tuple[int, int]:
    """Event ids compare as (milliseconds, sequence)."""
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def valid_cursor(cursor: str) -> bool:
    ms, sep, seq = cursor.partition("-")
    return ms.isdigit() and len(ms) <= 15 and (not sep or (seq.isdigit() and len(seq) <= 15))


def next_event_id(after: str, now_ms: int) -> str:
    """The smallest id a new event may take after `after`, at the time `now_ms`."""
    ms, seq = cursor_key(after)
    return f"{now_ms}-0" if now_ms > ms else f"{ms}-{seq + 1}"


class EventIdTaken(Exception):
    """An explicit event id did not sort after the stream's last event."""


class StreamGone(ChatkeepError):
    """The stream's retention ended: its events are gone (the stored messages remain)."""

    status = 410
    code = "stream_expired"


class Broker(abc.ABC):
    """Append-only streams. Publishing never waits for readers; a slow reader only lags."""

    @abc.abstractmethod
    async def publish(self, stream: str, type: str, data: dict[str, Any], *, event_id: str | None = None) -> Event:
        """Append an event. An explicit `event_id` must sort after the stream's last one
        (EventIdTaken otherwise): it lets a writer record an id before the event is visible."""

    @abc.abstractmethod
    async def read(self, stream: str, after: str | None, *, wait: float) -> list[Event]:
        """Events after the cursor (all with None); waits up to `wait` seconds for the next."""

    @abc.abstractmethod
    async def expire(self, stream: str, seconds: float) -> None:
        """Drop the stream `seconds` from now."""

    @abc.abstractmethod
    async def exists(self, stream: str) -> bool: ...

    @abc.abstractmethod
    async def set_flag(self, key: str, seconds: float) -> None:
        """A short-lived marker every process can see (e.g. "cancel this run")."""

    @abc.abstractmethod
    async def has_flag(self, key: str) -> bool: ...

    async def close(self) -> None:
        return None

    async def follow(
        self, stream: str, after: str | None, *, terminal: frozenset[str], idle: float = 15.0
    ) -> AsyncIterator[Event | None]:
        """Replay after the cursor, then follow live, until a terminal event. Yields None after
        `idle` seconds without events (time for a keep-alive)."""
        cursor = after
        while True:
            events = await self.read(stream, cursor, wait=idle)
            if not events:
                if not await self.exists(stream):
                    raise StreamGone("this stream's events have expired", stream=stream)
                yield None
                continue
            for event in events:
                cursor = event.id
                yield event
                if event.type in terminal:
                    return


def make_broker(settings: Settings) -> Broker:
    if settings.redis_url:
        from chatkeep.streams.redis import RedisBroker

        return RedisBroker(
            settings.redis_url,
            max_events=settings.stream_max_events,
            max_connections=settings.redis_max_connections,
            max_wait=settings.sse_keepalive_seconds,
        )
    from chatkeep.streams.memory import MemoryBroker

    return MemoryBroker(max_events=settings.stream_max_events)
