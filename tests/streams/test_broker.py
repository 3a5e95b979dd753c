"""Both brokers (in-process memory, real Redis): replay from any cursor, follow live with no gap
and no duplicate, expiry, trimming, flags."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from chatkeep.streams.broker import StreamGone, cursor_key, valid_cursor
from chatkeep.streams.memory import MemoryBroker
from chatkeep.streams.redis import RedisBroker

TERMINAL = frozenset({"done"})


@pytest.fixture(params=["memory", "redis"])
async def broker(request):
    if request.param == "memory":
        made = MemoryBroker(max_events=50)
    else:
        made = RedisBroker(os.environ["CHATKEEP_TEST_REDIS_URL"], max_events=50)
    yield made
    await made.close()


def stream() -> str:
    return f"test:{uuid.uuid4().hex}"


async def collect(broker, key, after=None):
    return [e async for e in broker.follow(key, after, terminal=TERMINAL, idle=5) if e is not None]


async def test_replay_everything_then_resume_from_each_cursor(broker):
    key = stream()
    published = [await broker.publish(key, "delta", {"i": i}) for i in range(10)]
    published.append(await broker.publish(key, "done", {}))
    ids = [e.id for e in published]
    assert ids == sorted(ids, key=cursor_key) and len(set(ids)) == len(ids)
    assert await collect(broker, key) == published
    for index, event in enumerate(published[:-1]):
        assert await collect(broker, key, event.id) == published[index + 1 :]


async def test_follow_live_while_publishing_has_no_gap_or_duplicate(broker):
    key = stream()
    first = await broker.publish(key, "delta", {"i": 0})

    async def produce():
        for i in range(1, 30):
            await broker.publish(key, "delta", {"i": i})
            if i % 7 == 0:
                await asyncio.sleep(0.01)
        await broker.publish(key, "done", {})

    readers = [asyncio.create_task(collect(broker, key)), asyncio.create_task(collect(broker, key, first.id))]
    await asyncio.sleep(0.05)
    await produce()
    everything, resumed = await asyncio.gather(*readers)
    assert [e.data.get("i") for e in everything] == [*range(30), None]
    assert everything[1:] == resumed


async def test_reader_waits_then_returns_nothing_on_a_quiet_stream(broker):
    key = stream()
    last = await broker.publish(key, "delta", {})
    assert await broker.read(key, last.id, wait=0.1) == []


async def test_expired_stream_is_gone(broker):
    key = stream()
    await broker.publish(key, "delta", {})
    await broker.expire(key, 0.2)
    assert await broker.exists(key)
    await asyncio.sleep(0.4)
    assert not await broker.exists(key)
    with pytest.raises(StreamGone):
        async for _ in broker.follow(key, None, terminal=TERMINAL, idle=0.1):
            pass


async def test_streams_are_trimmed_to_their_maximum(broker):
    key = stream()
    for i in range(200):
        await broker.publish(key, "delta", {"i": i})
    kept = await broker.read(key, None, wait=0)
    # Redis trims approximately (whole nodes): at least the last 50, far fewer than 200.
    assert 50 <= len(kept) < 200 and kept[-1].data == {"i": 199}


async def test_flags_expire(broker):
    key = f"cancel:{uuid.uuid4().hex}"
    assert not await broker.has_flag(key)
    await broker.set_flag(key, 0.2)
    assert await broker.has_flag(key)
    await asyncio.sleep(0.4)
    assert not await broker.has_flag(key)


def test_cursor_validation():
    assert valid_cursor("1700000000000-3") and valid_cursor("17")
    assert not any(valid_cursor(c) for c in ("", "abc", "1-x", "-1", "1" * 16))


async def test_a_quiet_stream_can_wait_longer_than_the_socket_default():
    # redis-py times reads out after 5 s by default; a follower must be able to wait longer.
    broker = RedisBroker(os.environ["CHATKEEP_TEST_REDIS_URL"], max_wait=6)
    key = stream()
    last = await broker.publish(key, "delta", {})
    assert await broker.read(key, last.id, wait=5.5) == []
    await broker.close()


async def test_many_concurrent_followers(broker):
    keys = [stream() for _ in range(150)]
    for key in keys:  # a run's stream exists (run.started) before anyone follows it
        await broker.publish(key, "started", {})
    readers = [asyncio.create_task(collect(broker, key)) for key in keys]
    await asyncio.sleep(0.2)
    for key in keys:
        await broker.publish(key, "delta", {"i": 1})
        await broker.publish(key, "done", {})
    assert all(len(found) == 3 for found in await asyncio.gather(*readers))


async def test_an_explicit_id_must_come_after_the_last(broker):
    from chatkeep.streams.broker import EventIdTaken, next_event_id

    key = stream()
    first = await broker.publish(key, "delta", {})
    chosen = next_event_id(first.id, 0)  # a clock behind the stream still gives a later id
    assert (await broker.publish(key, "done", {}, event_id=chosen)).id == chosen
    with pytest.raises(EventIdTaken):
        await broker.publish(key, "late", {}, event_id=first.id)
    assert [e.id for e in await broker.read(key, None, wait=0)] == [first.id, chosen]
