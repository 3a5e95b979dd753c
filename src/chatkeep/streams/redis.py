"""Redis Streams: every server process sees every stream, so a client can resume anywhere."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as redis

from chatkeep.streams.broker import Broker, Event, EventIdTaken

KEY_PREFIX = "chatkeep:"


class RedisBroker(Broker):
    def __init__(self, url: str, max_events: int = 10_000, *, max_connections: int = 1000, max_wait: float = 60.0) -> None:
        # Every live follower holds a connection in a blocking XREAD (up to `max_wait` seconds),
        # so the pool is sized for many open streams and reads may take that long.
        self.client = redis.Redis.from_url(url, max_connections=max_connections, socket_timeout=max_wait + 10)
        self.max_events = max_events

    async def publish(self, stream: str, type: str, data: dict[str, Any], *, event_id: str | None = None) -> Event:
        key = KEY_PREFIX + stream
        try:
            added = await self.client.xadd(
                key, {"type": type, "data": orjson.dumps(data)}, id=event_id or "*", maxlen=self.max_events, approximate=True
            )
        except redis.ResponseError as exc:
            if event_id is not None and "equal or smaller" in str(exc):
                raise EventIdTaken(event_id) from exc
            raise
        return Event(added.decode(), type, data)

    async def read(self, stream: str, after: str | None, *, wait: float) -> list[Event]:
        key = KEY_PREFIX + stream
        found = await self.client.xread({key: after or "0-0"}, block=max(1, int(wait * 1000)))
        events = []
        for _, entries in found or []:
            for event_id, fields in entries:
                events.append(Event(event_id.decode(), fields[b"type"].decode(), orjson.loads(fields[b"data"])))
        return events

    async def expire(self, stream: str, seconds: float) -> None:
        await self.client.pexpire(KEY_PREFIX + stream, int(seconds * 1000))

    async def exists(self, stream: str) -> bool:
        return bool(await self.client.exists(KEY_PREFIX + stream))

    async def set_flag(self, key: str, seconds: float) -> None:
        await self.client.set(KEY_PREFIX + "flag:" + key, b"1", px=int(seconds * 1000))

    async def has_flag(self, key: str) -> bool:
        return bool(await self.client.exists(KEY_PREFIX + "flag:" + key))

    async def close(self) -> None:
        await self.client.aclose()
