"""The embedded broker: streams in this process's memory (one server process)."""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field
from typing import Any

from chatkeep.streams.broker import Broker, Event, EventIdTaken, cursor_key


@dataclass
class _Stream:
    events: list[Event] = field(default_factory=list)
    # The events' cursors, in order: a reader finds its place by bisection, not by a scan.
    keys: list[tuple[int, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    last: tuple[int, int] = (0, 0)
    expires_at: float | None = None


class MemoryBroker(Broker):
    def __init__(self, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self._streams: dict[str, _Stream] = {}
        self._flags: dict[str, float] = {}

    def _live(self, stream: str) -> _Stream | None:
        found = self._streams.get(stream)
        if found is not None and found.expires_at is not None and found.expires_at <= time.monotonic():
            del self._streams[stream]
            found.changed.set()  # wake readers so they notice
            return None
        return found

    async def publish(self, stream: str, type: str, data: dict[str, Any], *, event_id: str | None = None) -> Event:
        target = self._live(stream)
        if target is None:
            target = self._streams[stream] = _Stream()
        if event_id is not None:
            if cursor_key(event_id) <= target.last:
                raise EventIdTaken(event_id)
            target.last = cursor_key(event_id)
        else:
            ms = int(time.time() * 1000)
            last_ms, last_seq = target.last
            target.last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        event = Event(f"{target.last[0]}-{target.last[1]}", type, data)
        target.events.append(event)
        target.keys.append(target.last)
        if len(target.events) > self.max_events:
            excess = len(target.events) - self.max_events
            del target.events[:excess], target.keys[:excess]
        target.changed.set()
        target.changed = asyncio.Event()
        return event

    async def read(self, stream: str, after: str | None, *, wait: float) -> list[Event]:
        deadline = time.monotonic() + wait
        while True:
            target = self._live(stream)
            if target is None:
                return []
            start = 0 if after is None else bisect.bisect_right(target.keys, cursor_key(after))
            events = target.events[start:]
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return list(events)
            try:
                await asyncio.wait_for(target.changed.wait(), timeout=remaining)
            except TimeoutError:
                return []

    async def expire(self, stream: str, seconds: float) -> None:
        target = self._live(stream)
        if target is not None:
            target.expires_at = time.monotonic() + seconds

    async def exists(self, stream: str) -> bool:
        return self._live(stream) is not None

    async def set_flag(self, key: str, seconds: float) -> None:
        self._flags[key] = time.monotonic() + seconds

    async def has_flag(self, key: str) -> bool:
        until = self._flags.get(key)
        if until is not None and until <= time.monotonic():
            del self._flags[key]
            return False
        return until is not None
