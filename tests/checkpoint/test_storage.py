"""Storage cost and fidelity: each channel version once, a growing message list stored as its
appended tail, bytes per turn flat; values rebuilt exactly by a saver that never saw them."""

from __future__ import annotations

import statistics
import threading
import uuid

from langchain_core.messages import AIMessage, RemoveMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from sqlalchemy import func, select, text

from chatkeep.checkpoint import AsyncChatkeepSaver, ChatkeepSaver
from chatkeep.checkpoint.base import ChatkeepSaverBase
from chatkeep.db.tables import CheckpointBlobRow
from tests.checkpoint.conftest import OWNER, engine_for, url_of
from tests.checkpoint.graphs import chat_graph, question

TURNS = 40


def stored_bytes(engine) -> int:
    """Every byte the saver keeps: checkpoints, blobs, writes."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT (SELECT coalesce(sum(length(checkpoint)), 0) FROM checkpoints)"
                " + (SELECT coalesce(sum(length(blob)), 0) FROM checkpoint_blobs)"
                " + (SELECT coalesce(sum(length(blob)), 0) FROM checkpoint_writes)"
            )
        ).scalar_one()


async def test_bytes_per_turn_stay_flat_as_the_thread_grows(saver):
    engine = engine_for(url_of(saver))
    graph = chat_graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"grow-{uuid.uuid4()}"}}
    per_turn, before = [], stored_bytes(engine)
    for turn in range(1, TURNS + 1):
        await graph.ainvoke({"messages": [question(turn)]}, config)
        after = stored_bytes(engine)
        per_turn.append(after - before)
        before = after
    early, late = statistics.median(per_turn[5:15]), statistics.median(per_turn[30:40])
    assert late <= 1.3 * early, (early, late)

    # The messages channel holds about its current list, not one copy of it per step.
    messages = (await graph.aget_state(config)).values["messages"]
    assert len(messages) == 2 * TURNS
    _, full_copy = JsonPlusSerializer().dumps_typed(messages)
    with engine.connect() as conn:
        kept = conn.scalar(
            select(func.sum(func.length(CheckpointBlobRow.blob))).where(CheckpointBlobRow.channel == "messages")
        )
        longest_chain = conn.scalar(select(func.max(CheckpointBlobRow.depth)))
    assert kept < 3 * len(full_copy), (kept, len(full_copy))
    assert 0 < longest_chain <= TURNS
    engine.dispose()


async def test_a_saver_that_never_saw_the_thread_rebuilds_every_checkpoint(saver, new_database):
    graph = chat_graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"rebuild-{uuid.uuid4()}"}}
    for turn in range(1, 25):
        await graph.ainvoke({"messages": [question(turn)]}, config)
    expected = (await graph.aget_state(config)).values["messages"]
    history = [s async for s in graph.aget_state_history(config)]

    # A second saver on the same database, with nothing cached.
    async with AsyncChatkeepSaver.from_conn_string(url_of(saver), user_id=OWNER) as fresh:
        other = chat_graph().compile(checkpointer=fresh)
        assert (await other.aget_state(config)).values["messages"] == expected
        again = [s async for s in other.aget_state_history(config)]
    assert [s.values for s in again] == [s.values for s in history]
    # Every checkpoint of the history holds a prefix of the final list.
    for snapshot in again:
        got = snapshot.values.get("messages", [])
        assert got == expected[: len(got)]


async def test_a_list_that_does_not_extend_its_last_version_is_stored_whole(saver):
    graph = chat_graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"edit-{uuid.uuid4()}"}}
    for turn in range(1, 4):
        await graph.ainvoke({"messages": [question(turn)]}, config)
    messages = (await graph.aget_state(config)).values["messages"]
    # Replace one message (same id) and remove another: not an extension of the last version.
    edited = AIMessage(content="edited reply", id=messages[1].id)
    await graph.aupdate_state(config, {"messages": [edited, RemoveMessage(id=messages[2].id)]})
    await graph.ainvoke({"messages": [question(4)]}, config)
    state = (await graph.aget_state(config)).values["messages"]
    assert [m.content for m in state[:2]] == [messages[0].content, "edited reply"]
    assert messages[2].id not in {m.id for m in state}
    async with AsyncChatkeepSaver.from_conn_string(url_of(saver), user_id=OWNER) as fresh:
        assert (await chat_graph().compile(checkpointer=fresh).aget_state(config)).values["messages"] == state


async def test_writes_before_their_checkpoint_and_who_wins(saver):
    from langgraph.checkpoint.base.id import uuid6
    from langgraph.checkpoint.serde.types import ERROR

    thread_id = f"writes-{uuid.uuid4()}"
    checkpoint_id = str(uuid6(clock_seq=1))
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    # Writes first (a run saves them in the background), then their checkpoint.
    await saver.aput_writes(config, [("out", "first"), (ERROR, "boom")], "task-1")
    await saver.aput_writes(config, [("out", "second"), (ERROR, "bang")], "task-1")
    checkpoint = {"v": 4, "id": checkpoint_id, "ts": "2026-01-01T00:00:00+00:00", "channel_values": {"n": 1},
                  "channel_versions": {"n": 1}, "versions_seen": {}, "updated_channels": None}
    await saver.aput({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, checkpoint, {"source": "loop"}, {"n": 1})
    tup = await saver.aget_tuple(config)
    # Ordinary writes: the first writer wins; special (negative index) writes: the last.
    assert sorted(tup.pending_writes) == sorted([("task-1", "out", "first"), ("task-1", ERROR, "bang")])
    assert tup.checkpoint["channel_versions"] == {"n": 1}  # int versions stay ints


async def test_metadata_takes_the_config_and_is_filterable(saver):
    graph = chat_graph().compile(checkpointer=saver)
    thread_id = f"meta-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread_id, "user_id": OWNER, "tenant": "acme"}, "metadata": {"app": "demo"}}
    await graph.ainvoke({"messages": [question(1)]}, config)
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}}, filter={"app": "demo"})]
    assert tuples and all(t.metadata["tenant"] == "acme" and t.metadata["user_id"] == OWNER for t in tuples)
    assert [t async for t in saver.alist(None, filter={"app": "demo", "tenant": "other"})] == []
    inputs = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}}, filter={"source": "input"})]
    assert [t.metadata["step"] for t in inputs] == [-1]


def test_the_sync_saver_is_thread_safe(new_database):
    with ChatkeepSaver.from_conn_string(new_database(), user_id=OWNER) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        errors: list[BaseException] = []

        def chat(thread_id: str) -> None:
            try:
                for turn in range(1, 6):
                    graph.invoke({"messages": [question(turn)]}, {"configurable": {"thread_id": thread_id}})
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=chat, args=(f"par-{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        for i in range(6):
            state = graph.get_state({"configurable": {"thread_id": f"par-{i}"}})
            assert len(state.values["messages"]) == 10



def test_versions_are_short_unique_and_sort_after_older_ones():
    saver = ChatkeepSaverBase()
    older = "00000000000000000000000000000007.0.12345678901234567"  # earlier releases, LangGraph's savers
    versions = [saver.get_next_version(None, None)]
    for _ in range(12):
        versions.append(saver.get_next_version(versions[-1], None))
    assert all(len(v) == 21 for v in versions)
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    following = saver.get_next_version(older, None)
    assert following > older and following.startswith("000000000008.")
    assert saver.get_next_version(3, None).startswith("000000000004.")
    # Two forks of one checkpoint get different versions.
    assert len({saver.get_next_version(versions[0], None) for _ in range(50)}) == 50


async def test_a_tail_whose_base_is_gone_is_stored_whole(saver):
    """Another process may prune the version this saver last wrote: the next tail can't point
    at it, and the value is stored whole instead."""
    graph = chat_graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"gone-{uuid.uuid4()}"}}
    for turn in range(1, 4):
        await graph.ainvoke({"messages": [question(turn)]}, config)
    latest = await saver.aget_tuple(config)
    version = str(latest.checkpoint["channel_versions"]["messages"])
    engine = engine_for(url_of(saver))
    with engine.begin() as conn:
        conn.execute(
            CheckpointBlobRow.__table__.delete().where(
                CheckpointBlobRow.thread_id == config["configurable"]["thread_id"],
                CheckpointBlobRow.channel == "messages",
                CheckpointBlobRow.version == version,
            )
        )
    await graph.ainvoke({"messages": [question(4)]}, config)
    state = (await graph.aget_state(config)).values["messages"]
    assert len(state) == 8
    with engine.connect() as conn:
        newest = conn.execute(
            select(CheckpointBlobRow.base_version, CheckpointBlobRow.depth)
            .where(CheckpointBlobRow.thread_id == config["configurable"]["thread_id"],
                   CheckpointBlobRow.channel == "messages")
            .order_by(CheckpointBlobRow.version.desc())
        ).all()
    # The first version after the gap is a full copy; the one after it a tail against it.
    assert newest[1] == (None, 0) and newest[0][1] == 1
    async with AsyncChatkeepSaver.from_conn_string(url_of(saver), user_id=OWNER) as fresh:
        assert (await chat_graph().compile(checkpointer=fresh).aget_state(config)).values["messages"] == state
    engine.dispose()
