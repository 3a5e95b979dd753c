"""A real LangGraph graph with a tool call, on the async and the sync saver, writing to the
database a running chatkeep server uses; the session, its title and messages are then read
over HTTP like any chat."""

from __future__ import annotations

import uuid

from langchain_core.messages import HumanMessage

from chatkeep.checkpoint import AsyncChatkeepSaver, ChatkeepSaver, thread_config
from tests.checkpoint.graphs import tool_graph

QUESTION = "What's the weather in Lisbon for the weekend?\nWe plan to walk a lot."


def check_session(alice, bob, thread_id: str, state_messages: list) -> None:
    session = alice.get(f"/v1/sessions/{thread_id}").json()
    assert session["id"] == thread_id
    assert session["title"] == "What's the weather in Lisbon for the weekend?"
    assert session["agent"] == "langgraph"
    # Two turns, each: question, tool call, tool result, answer.
    assert session["message_count"] == 8
    assert session["prompt_tokens"] == 24 and session["completion_tokens"] == 14

    chat = alice.get(f"/v1/sessions/{thread_id}/messages").json()["data"]
    assert [(m["role"], m["content"]) for m in chat] == [
        ("user", QUESTION),
        ("assistant", "Here you go: Sunny and 24°C in Lisbon."),
        ("user", "And on Monday?"),
        ("assistant", "Here you go: Sunny and 24°C in Lisbon."),
    ]
    everything = alice.get(f"/v1/sessions/{thread_id}/messages", params={"include_tools": "true"}).json()["data"]
    assert [m["role"] for m in everything] == ["user", "assistant", "tool", "assistant"] * 2
    assert [m["seq"] for m in everything] == list(range(1, 9))
    call, result = everything[1], everything[2]
    assert call["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}
    ]
    assert call["model"] == "fake-model" and call["prompt_tokens"] == 12
    assert result["tool_call_id"] == "call_1" and result["content"] == "Sunny and 24°C in Lisbon."
    # Each LangChain message once, in the graph's order, matched by its id.
    assert [m["metadata"]["langgraph_message_id"] for m in everything] == [m.id for m in state_messages]

    assert bob.get(f"/v1/sessions/{thread_id}").status_code == 404
    assert bob.get(f"/v1/sessions/{thread_id}/thread-config").status_code == 404
    config = alice.get(f"/v1/sessions/{thread_id}/thread-config")
    assert config.status_code == 200
    expected = {
        "thread_id": thread_id,
        "user_id": alice.user["id"],
        "model_name": session["model"],
        "temperature": session["temperature"],
        "max_tokens": session["max_tokens"],
    }
    assert config.json() == {"configurable": expected}
    assert thread_config(session, user_id=alice.user["id"]) == {"configurable": expected}


async def test_tool_graph_on_the_async_saver(live_server, alice, bob):
    thread_id = f"lg-async-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread_id, "user_id": alice.user["id"]}}
    async with AsyncChatkeepSaver.from_conn_string(live_server.settings.database_url) as saver:
        graph = tool_graph().compile(checkpointer=saver)
        await graph.ainvoke({"messages": [HumanMessage(QUESTION)]}, config)
        await graph.ainvoke({"messages": [HumanMessage("And on Monday?")]}, config)
        state = await graph.aget_state(config)
        history = [s async for s in graph.aget_state_history(config)]
    assert len(state.values["messages"]) == 8
    assert len(history) >= 8
    check_session(alice, bob, thread_id, state.values["messages"])


def test_tool_graph_on_the_sync_saver(live_server, alice, bob):
    thread_id = f"lg-sync-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread_id, "user_id": alice.user["id"]}}
    with ChatkeepSaver.from_conn_string(live_server.settings.database_url) as saver:
        graph = tool_graph().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage(QUESTION)]}, config)
        graph.invoke({"messages": [HumanMessage("And on Monday?")]}, config)
        state = graph.get_state(config)
    check_session(alice, bob, thread_id, state.values["messages"])


def test_the_thread_config_of_a_session_runs_a_graph_on_it(live_server, alice):
    """A session made over HTTP, its thread config from HTTP, a graph run with that config:
    the graph's turn lands in that session."""
    session = alice.post("/v1/sessions", json={"model": "gpt-x", "temperature": 0.2}).json()
    config = alice.get(f"/v1/sessions/{session['id']}/thread-config").json()
    assert config["configurable"]["model_name"] == "gpt-x" and config["configurable"]["temperature"] == 0.2
    with ChatkeepSaver.from_conn_string(live_server.settings.database_url) as saver:
        tool_graph().compile(checkpointer=saver).invoke({"messages": [HumanMessage("Hi there")]}, config)
    after = alice.get(f"/v1/sessions/{session['id']}").json()
    assert after["title"] == "Hi there" and after["message_count"] == 4 and after["agent"] == "default"
