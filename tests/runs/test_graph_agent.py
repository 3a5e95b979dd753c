"""A configured LangGraph agent (the shipped example, with a tool) runs through chatkeep's
checkpointer: its tokens stream as message.delta, its messages land in the session."""

from __future__ import annotations

from tests.runs.conftest import new_session, start_run
from tests.runs.sse import events
from tests.runs.test_runs import events_url


def test_a_graph_agent_run_streams_and_stores_its_messages(runner):
    sid = new_session(runner)
    run = start_run(runner, sid, "one two three four", agent="words")
    assert run["agent"] == "words"
    stream = events(runner, events_url(sid, run["id"]))
    assert [e.type for e in stream] == ["run.started", "message.delta", "message.completed", "run.completed"]
    assert stream[1].data["content"] == "Your message has 4 words." == stream[2].data["content"]

    everything = runner.get(f"/v1/sessions/{sid}/messages", params={"include_tools": "true"}).json()["data"]
    assert [m["role"] for m in everything] == ["user", "assistant", "tool", "assistant"]
    assert everything[1]["tool_calls"][0]["function"]["name"] == "count_words" and everything[2]["content"] == "4"
    assert [m["id"] for m in everything] == stream[-1].data["message_ids"]
    visible = runner.get(f"/v1/sessions/{sid}/messages").json()["data"]
    assert [m["content"] for m in visible] == ["one two three four", "Your message has 4 words."]
    assert runner.get(f"/v1/sessions/{sid}").json()["title"] == "one two three four"

    # The graph continues from its checkpoint: a second run sees the whole thread.
    second = start_run(runner, sid, "five six", agent="words")
    assert events(runner, events_url(sid, second["id"]))[1].data["content"] == "Your message has 2 words."
    assert len(runner.get(f"/v1/sessions/{sid}/messages").json()["data"]) == 4


def test_unknown_agent_is_refused(runner):
    sid = new_session(runner)
    response = runner.post(f"/v1/sessions/{sid}/runs", json={"input": [{"role": "user", "content": "x"}], "agent": "ghost"})
    assert response.status_code == 422 and response.json()["code"] == "unknown_agent"
    assert "words" in response.json()["error"]
