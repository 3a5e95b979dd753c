"""Retention: keep_last K checkpoints per thread namespace (saver option, prune, the CLI),
pending writes respected, values of kept checkpoints intact, sessions untouched."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from langgraph.checkpoint.base.id import uuid6

from chatkeep.checkpoint import AsyncChatkeepSaver, ChatkeepSaver
from tests.checkpoint.conftest import OWNER, count_rows, engine_for, url_of
from tests.checkpoint.graphs import chat_graph, question

CHATKEEP = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "chatkeep"


async def test_keep_last_as_a_saver_option(new_database):
    url = new_database()
    thread_id = f"keep-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread_id}}
    async with AsyncChatkeepSaver.from_conn_string(url, user_id=OWNER, keep_last=3) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        for turn in range(1, 16):
            await graph.ainvoke({"messages": [question(turn)]}, config)
        state = (await graph.aget_state(config)).values["messages"]
        history = [s async for s in graph.aget_state_history(config)]
        # A pass runs every RETAIN_EVERY checkpoints: never more than that many beyond K.
        assert 3 <= len(history) < 3 + 10
        retained = await saver.aretain(3)
        assert retained.checkpoints == len(history) - 3
        assert len([s async for s in graph.aget_state_history(config)]) == 3
    # What is kept still loads whole, in a saver that never saw it.
    async with AsyncChatkeepSaver.from_conn_string(url, user_id=OWNER) as fresh:
        assert (await chat_graph().compile(checkpointer=fresh).aget_state(config)).values["messages"] == state


async def test_prune_keeps_the_latest_its_writes_and_writes_not_saved_yet(saver):
    graph = chat_graph().compile(checkpointer=saver)
    thread_id = f"prune-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread_id}}
    for turn in range(1, 6):
        await graph.ainvoke({"messages": [question(turn)]}, config)
    latest = await saver.aget_tuple(config)
    await saver.aput_writes(latest.config, [("pending", "kept")], "task-now")
    future = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": str(uuid6(clock_seq=99))}}
    await saver.aput_writes(future, [("pending", "early")], "task-next")
    engine = engine_for(url_of(saver))
    blobs_before = count_rows(engine, "checkpoint_blobs", thread_id)

    await saver.aprune([thread_id], strategy="keep_latest")
    tuples = [t async for t in saver.alist(config)]
    assert [t.config["configurable"]["checkpoint_id"] for t in tuples] == [latest.config["configurable"]["checkpoint_id"]]
    assert ("task-now", "pending", "kept") in tuples[0].pending_writes
    assert tuples[0].checkpoint["channel_values"]["messages"] == latest.checkpoint["channel_values"]["messages"]
    assert tuples[0].parent_config is None
    # The write of a checkpoint not saved yet survives; blobs nothing kept needs are gone.
    assert count_rows(engine, "checkpoint_writes", thread_id) == len(latest.pending_writes) + 2
    assert count_rows(engine, "checkpoint_blobs", thread_id) < blobs_before
    # The thread goes on after a prune.
    await graph.ainvoke({"messages": [question(6)]}, config)
    assert len((await graph.aget_state(config)).values["messages"]) == 12
    engine.dispose()


def test_cli_prunes_every_thread_to_keep_last(new_database, tmp_path):
    url = new_database()
    with ChatkeepSaver.from_conn_string(url, user_id=OWNER) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        for name in ("cli-a", "cli-b"):
            for turn in range(1, 5):
                graph.invoke({"messages": [question(turn)]}, {"configurable": {"thread_id": name}})
        states = {name: graph.get_state({"configurable": {"thread_id": name}}).values for name in ("cli-a", "cli-b")}
    engine = engine_for(url)
    before = count_rows(engine, "checkpoints")
    result = subprocess.run(
        [str(CHATKEEP), "checkpoints", "prune", "--keep-last", "2"],
        env={**os.environ, "CHATKEEP_DATABASE_URL": url, "COLUMNS": "200"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert count_rows(engine, "checkpoints") == 4
    assert f"pruned {before - 4} checkpoints" in result.stdout
    assert count_rows(engine, "checkpoint_messages") == 16  # sessions and their mirror untouched
    with ChatkeepSaver.from_conn_string(url, user_id=OWNER) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        for name, values in states.items():
            assert graph.get_state({"configurable": {"thread_id": name}}).values == values
    bad = subprocess.run(
        [str(CHATKEEP), "checkpoints", "prune", "--keep-last", "0"],
        env={**os.environ, "CHATKEEP_DATABASE_URL": url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    engine.dispose()
