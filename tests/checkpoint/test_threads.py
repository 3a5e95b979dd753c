"""Threads are sessions: created with the first checkpoint, mirrored, deleted together, and a
deleted thread stays deleted against a graph still running for it. Against the database of a
running server, read back over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base.id import uuid6

from chatkeep.checkpoint import AsyncChatkeepSaver, ChatkeepSaver
from chatkeep.checkpoint.store import ThreadOwnerMismatch
from tests.checkpoint.conftest import SyncAsAsync, count_rows, engine_for
from tests.checkpoint.graphs import tool_graph

THREAD_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_messages")


@pytest.fixture(params=["async", "sync"])
async def live_saver(request, live_server) -> AsyncIterator:
    """A saver (asyncio API) on the running server's database, without a default owner."""
    url = live_server.settings.database_url
    if request.param == "async":
        async with AsyncChatkeepSaver.from_conn_string(url) as saver:
            yield saver
    else:
        with ChatkeepSaver.from_conn_string(url) as saver:
            yield SyncAsAsync(saver)


@pytest.fixture
def engine(live_server):
    engine = engine_for(live_server.settings.database_url)
    yield engine
    engine.dispose()


def new_thread(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4()}"


def config_of(thread_id: str, user_id: str | None, **extra) -> dict:
    configurable = {"thread_id": thread_id, **({"user_id": user_id} if user_id else {}), **extra}
    return {"configurable": configurable}


async def late_checkpoint(saver, thread_id: str, parent_config: dict, checkpoint_id: str) -> None:
    """What a graph still running for a deleted thread saves next: a checkpoint after its last
    one, and writes against that one."""
    messages = [HumanMessage("late question", id="late-1"), AIMessage("late answer", id="late-2")]
    version = saver.get_next_version(None, None)
    checkpoint = {
        "v": 4,
        "id": checkpoint_id,
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"messages": messages},
        "channel_versions": {"messages": version},
        "versions_seen": {},
        "updated_channels": ["messages"],
    }
    await saver.aput(parent_config, checkpoint, {"source": "loop", "step": 9}, {"messages": version})
    await saver.aput_writes(parent_config, [("messages", [AIMessage("late write")])], "late-task")


async def test_first_checkpoint_creates_the_session(live_saver, alice, bob):
    thread_id = new_thread()
    config = config_of(
        thread_id, alice.user["id"], agent="support-bot", model_name="gpt-4o-mini", temperature=0.3, max_tokens=300
    )
    graph = tool_graph().compile(checkpointer=live_saver)
    await graph.ainvoke({"messages": [HumanMessage("Book a table for two")]}, config)
    session = alice.get(f"/v1/sessions/{thread_id}").json()
    assert (session["agent"], session["model"], session["temperature"], session["max_tokens"]) == (
        "support-bot", "gpt-4o-mini", 0.3, 300,
    )
    assert session["title"] == "Book a table for two"
    assert session["metadata"] == {"langgraph": True}
    assert [s["id"] for s in alice.get("/v1/sessions", params={"agent": "support-bot"}).json()["data"]] == [thread_id]
    assert bob.get(f"/v1/sessions/{thread_id}").status_code == 404


async def test_a_new_thread_needs_an_owner(live_saver, engine, alice):
    thread_id = new_thread()
    graph = tool_graph().compile(checkpointer=live_saver)
    with pytest.raises(ValueError, match="user_id"):
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, config_of(thread_id, None))
    # (The run's input writes may be stored: writes can come before their checkpoint.)
    assert all(count_rows(engine, table, thread_id) == 0 for table in ("checkpoints", "checkpoint_blobs"))
    assert alice.get(f"/v1/sessions/{thread_id}").status_code == 404
    with pytest.raises(ValueError, match="thread_id"):
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, config_of("no spaces/or slashes", alice.user["id"]))


async def test_another_user_cannot_write_to_a_thread(live_saver, alice, bob):
    thread_id = new_thread()
    graph = tool_graph().compile(checkpointer=live_saver)
    await graph.ainvoke({"messages": [HumanMessage("mine")]}, config_of(thread_id, alice.user["id"]))
    with pytest.raises(ThreadOwnerMismatch):
        await graph.ainvoke({"messages": [HumanMessage("theirs")]}, config_of(thread_id, bob.user["id"]))
    # Without a user id the thread's own owner is used.
    await graph.ainvoke({"messages": [HumanMessage("again")]}, config_of(thread_id, None))
    assert alice.get(f"/v1/sessions/{thread_id}").json()["message_count"] == 8


async def test_delete_thread_deletes_the_session_and_stays_deleted(live_saver, engine, alice):
    thread_id = new_thread()
    config = config_of(thread_id, alice.user["id"])
    graph = tool_graph().compile(checkpointer=live_saver)
    await graph.ainvoke({"messages": [HumanMessage("first life")]}, config)
    last = (await live_saver.aget_tuple(config)).config
    started_before_delete = str(uuid6(clock_seq=0))

    await live_saver.adelete_thread(thread_id)
    assert alice.get(f"/v1/sessions/{thread_id}").status_code == 404
    assert all(count_rows(engine, table, thread_id) == 0 for table in THREAD_TABLES)
    assert count_rows(engine, "checkpoint_tombstones", thread_id) == 1

    # The graph that was running saves on: a checkpoint after its last one, writes against it,
    # and a first checkpoint of a run that started before the delete. None of it comes back.
    await late_checkpoint(live_saver, thread_id, last, str(uuid6(clock_seq=10)))
    await live_saver.aput(
        config_of(thread_id, alice.user["id"], checkpoint_ns=""),
        {"v": 4, "id": started_before_delete, "ts": "2026-01-01T00:00:00+00:00", "channel_values": {},
         "channel_versions": {}, "versions_seen": {}, "updated_channels": None},
        {"source": "input", "step": -1},
        {},
    )
    assert await live_saver.aget_tuple(config) is None
    assert [t async for t in live_saver.alist(config)] == []
    assert all(count_rows(engine, table, thread_id) == 0 for table in THREAD_TABLES)
    assert alice.get(f"/v1/sessions/{thread_id}").status_code == 404

    # A new run on the same thread id starts over: a new session, only the new turn.
    await graph.ainvoke({"messages": [HumanMessage("second life")]}, config)
    session = alice.get(f"/v1/sessions/{thread_id}").json()
    assert session["title"] == "second life" and session["message_count"] == 4
    state = await graph.aget_state(config)
    assert [m.content for m in state.values["messages"]][0] == "second life"


async def test_hard_deleting_the_session_removes_every_checkpoint_row(live_saver, engine, alice):
    thread_id = new_thread()
    config = config_of(thread_id, alice.user["id"])
    graph = tool_graph().compile(checkpointer=live_saver)
    await graph.ainvoke({"messages": [HumanMessage("to be deleted")]}, config)
    last = (await live_saver.aget_tuple(config)).config
    assert all(count_rows(engine, table, thread_id) > 0 for table in THREAD_TABLES)

    assert alice.delete(f"/v1/sessions/{thread_id}", params={"hard": "true"}).status_code == 204
    assert all(count_rows(engine, table, thread_id) == 0 for table in THREAD_TABLES)
    assert count_rows(engine, "checkpoint_tombstones", thread_id) == 1
    await late_checkpoint(live_saver, thread_id, last, str(uuid6(clock_seq=10)))
    assert all(count_rows(engine, table, thread_id) == 0 for table in THREAD_TABLES)
    assert alice.get(f"/v1/sessions/{thread_id}").status_code == 404


async def test_a_plain_session_hard_delete_leaves_no_tombstone(engine, alice):
    session = alice.post("/v1/sessions", json={}).json()
    assert alice.delete(f"/v1/sessions/{session['id']}", params={"hard": "true"}).status_code == 204
    assert count_rows(engine, "checkpoint_tombstones", session["id"]) == 0


async def test_a_session_in_the_trash_keeps_its_checkpoints_but_gets_no_messages(live_saver, alice):
    thread_id = new_thread()
    config = config_of(thread_id, alice.user["id"])
    graph = tool_graph().compile(checkpointer=live_saver)
    await graph.ainvoke({"messages": [HumanMessage("one")]}, config)
    assert alice.delete(f"/v1/sessions/{thread_id}").status_code == 204
    await graph.ainvoke({"messages": [HumanMessage("two")]}, config)
    assert len((await graph.aget_state(config)).values["messages"]) == 8
    assert alice.post(f"/v1/sessions/{thread_id}/restore").json()["message_count"] == 4
    await graph.ainvoke({"messages": [HumanMessage("three")]}, config)
    chat = alice.get(f"/v1/sessions/{thread_id}/messages").json()["data"]
    assert [m["content"] for m in chat if m["role"] == "user"] == ["one", "three"]


async def test_copy_thread_makes_a_session_like_the_source(live_saver, alice):
    source, target = new_thread("src"), new_thread("dst")
    graph = tool_graph().compile(checkpointer=live_saver)
    await graph.ainvoke({"messages": [HumanMessage("Copy me")]}, config_of(source, alice.user["id"], agent="copier"))
    await live_saver.acopy_thread(source, target)
    copied = alice.get(f"/v1/sessions/{target}").json()
    assert (copied["title"], copied["agent"], copied["message_count"]) == ("Copy me", "copier", 4)
    assert copied["metadata"] == {"langgraph": True, "copied_from": source}
    original = (await graph.aget_state(config_of(source, None))).values["messages"]
    assert (await graph.aget_state(config_of(target, None))).values["messages"] == original
    # The copy lives on by itself.
    await graph.ainvoke({"messages": [HumanMessage("Only in the copy")]}, config_of(target, alice.user["id"]))
    assert alice.get(f"/v1/sessions/{target}").json()["message_count"] == 8
    assert alice.get(f"/v1/sessions/{source}").json()["message_count"] == 4
