"""What the model sees: [system prompt] + [summary] + [history window] + [new messages], checked
against what the fake upstream actually received."""

from __future__ import annotations

import pytest

from chatkeep.llm.tokens import TokenCounter
from tests.gateway.conftest import SMALL_CONTEXT, SMALL_MODEL
from tests.gateway.helpers import add_messages, assistant, chat, db_rows, messages, new_session, snapshot, user

COUNTER = TokenCounter()
# fake-small: context window − reply reserve (50) − safety margin (10), as gateway_server sets them.
SMALL_BUDGET = SMALL_CONTEXT - 50 - 10
SYSTEM = {"role": "system", "content": "Be brief."}
HISTORY = [user("q1"), assistant("a1"), user("q2"), assistant("a2"), user("q3"), assistant("a3")]


def tool_call(*ids: str, padding: str = "") -> dict:
    calls = [{"id": i, "type": "function", "function": {"name": "lookup", "arguments": f'{{"q": "{i}{padding}"}}'}} for i in ids]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def tool_result(call_id: str, text: str) -> dict:
    return {"role": "tool", "content": text, "tool_call_id": call_id}


def assert_tool_calls_whole(sent: list[dict]) -> None:
    """Each tool result directly follows the call it answers, and each call is followed by all its results."""
    for index, message in enumerate(sent):
        if message["role"] == "tool":
            caller = next((m for m in reversed(sent[:index]) if m["role"] != "tool"), {})
            assert message["tool_call_id"] in {c["id"] for c in caller.get("tool_calls") or []}, f"orphan tool result: {message}"
        if message.get("tool_calls"):
            results = []
            for later in sent[index + 1 :]:
                if later["role"] != "tool":
                    break
                results.append(later["tool_call_id"])
            assert sorted(results) == sorted(c["id"] for c in message["tool_calls"]), f"call split from its results: {message}"


def test_context_is_system_prompt_then_history_then_new_messages(gw_user, fake):
    sid = new_session(gw_user, model="fake-a", system_prompt=SYSTEM["content"])
    add_messages(gw_user, sid, HISTORY)
    new = [{"role": "system", "content": "Answer in French."}, user("q4")]
    response = chat(gw_user, session_id=sid, messages=new)  # no model: the session's
    assert response.status_code == 200, response.text
    assert fake.last()["model"] == "fake-a"
    assert fake.last()["messages"] == [SYSTEM, *HISTORY, *new]
    assert [m["content"] for m in messages(gw_user, sid)] == [m["content"] for m in [*HISTORY, *new]] + ["reply to: q4"]


@pytest.mark.parametrize("override, kept", [(None, 4), (2, 2), (0, 0), (1000, 6)])
def test_history_window_from_session_overridden_by_request(gw_user, fake, override, kept):
    sid = new_session(gw_user, model="fake-a", max_history_messages=4)
    add_messages(gw_user, sid, HISTORY)
    body = {"session_id": sid, "messages": [user("q4")]}
    if override is not None:
        body["max_history_messages"] = override
    assert chat(gw_user, **body).status_code == 200
    assert fake.last()["messages"] == [*HISTORY[len(HISTORY) - kept :], user("q4")]
    assert "max_history_messages" not in fake.last()


def test_history_window_defaults_to_20(gw_user, fake):
    history = [user(f"m{i}") if i % 2 == 0 else assistant(f"m{i}") for i in range(24)]
    sid = new_session(gw_user, model="fake-a")
    add_messages(gw_user, sid, history)
    assert chat(gw_user, session_id=sid, messages=[user("new")]).status_code == 200
    assert fake.last()["messages"] == [*history[-20:], user("new")]


# u1, a call with two results, then plain messages: windows that start inside the tool group.
TOOL_HISTORY = [
    user("u1"), tool_call("c1", "c2"), tool_result("c1", "r1"), tool_result("c2", "r2"),
    assistant("a2"), user("u3"), assistant("a3"),
]


@pytest.mark.parametrize(
    "window, expected",
    [(7, TOOL_HISTORY), (6, TOOL_HISTORY[1:]), (5, TOOL_HISTORY[4:]), (4, TOOL_HISTORY[4:]), (3, TOOL_HISTORY[4:])],
)
def test_history_window_never_splits_a_tool_call_from_its_results(gw_user, fake, window, expected):
    sid = new_session(gw_user, model="fake-a")
    add_messages(gw_user, sid, TOOL_HISTORY)
    assert chat(gw_user, session_id=sid, max_history_messages=window, messages=[user("next")]).status_code == 200
    sent = fake.last()["messages"]
    assert_tool_calls_whole(sent)
    assert sent == [*expected, user("next")]


def test_tool_call_from_the_model_then_its_result_as_the_next_turn(gw_user, fake):
    first = chat(gw_user, model="fake-tool", store=True, messages=[user("look it up")])
    assert first.status_code == 200, first.text
    call = first.json()["choices"][0]["message"]
    sid = first.json()["session_id"]
    result = tool_result(call["tool_calls"][0]["id"], "42")
    assert chat(gw_user, model="fake-a", session_id=sid, messages=[result]).status_code == 200
    sent = fake.last()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"] == call["tool_calls"] and sent[2] == result
    assert [m["role"] for m in messages(gw_user, sid)] == ["user", "assistant", "tool", "assistant"]


def _long_history(count: int) -> list[dict]:
    return [(user if i % 2 == 0 else assistant)(f"message {i}: " + "lorem ipsum " * 12) for i in range(count)]


@pytest.mark.parametrize("max_tokens, budget", [(None, SMALL_BUDGET), (200, SMALL_CONTEXT - 200 - 10)])
def test_long_history_is_trimmed_oldest_first_to_the_token_budget(gw_user, fake, max_tokens, budget):
    history = _long_history(16)
    sid = new_session(gw_user, model=SMALL_MODEL, system_prompt=SYSTEM["content"], max_history_messages=100)
    add_messages(gw_user, sid, history)
    assert COUNTER.count_messages([SYSTEM, *history, user("latest")]) > budget  # the premise
    body = {"session_id": sid, "messages": [user("latest")]} | ({"max_tokens": max_tokens} if max_tokens else {})
    assert chat(gw_user, **body).status_code == 200
    sent = fake.last()["messages"]
    assert sent[0] == SYSTEM and sent[-1] == user("latest")
    kept = sent[1:-1]
    assert 0 < len(kept) < len(history)
    assert kept == history[len(history) - len(kept) :]  # the newest ones, in order
    assert COUNTER.count_messages(sent) <= budget
    # ...and no more was dropped than needed: one more older message would not fit.
    assert COUNTER.count_messages([SYSTEM, history[-len(kept) - 1], *kept, user("latest")]) > budget


def test_token_trimming_drops_a_tool_call_and_its_results_together(gw_user, fake):
    group = [tool_call("c1", padding=" pad" * 60), tool_result("c1", "result " * 250)]
    history = [user("start " * 40), *group, assistant("done"), user("ok"), assistant("fine")]
    tail = [assistant("done"), user("ok"), assistant("fine")]
    new = [user("next")]
    # The premise: without its call the tool result would fit, with it it does not.
    assert COUNTER.count_messages([group[1], *tail, *new]) <= SMALL_BUDGET < COUNTER.count_messages([*group, *tail, *new])
    sid = new_session(gw_user, model=SMALL_MODEL, max_history_messages=100)
    add_messages(gw_user, sid, history)
    assert chat(gw_user, session_id=sid, messages=new).status_code == 200
    sent = fake.last()["messages"]
    assert_tool_calls_whole(sent)
    assert sent == [*tail, *new]


def test_new_messages_over_the_budget_are_refused_and_nothing_is_stored(gw_user, fake, gateway_server):
    sid = new_session(gw_user, model=SMALL_MODEL, system_prompt=SYSTEM["content"])
    add_messages(gw_user, sid, HISTORY)
    before = snapshot(gw_user, gateway_server.settings.database_url, sid)
    huge = user("lorem ipsum " * 300)
    assert COUNTER.count_messages([huge]) > SMALL_BUDGET
    response = chat(gw_user, session_id=sid, messages=[huge])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "context_length_exceeded"
    assert fake.requests == []
    assert snapshot(gw_user, gateway_server.settings.database_url, sid) == before


# --- summaries ----------------------------------------------------------------------------------


def _summarizing_turns(gw_user, turns: int) -> str:
    sid = new_session(gw_user, model="fake-a", system_prompt=SYSTEM["content"], summarization=True, max_history_messages=2)
    for i in range(1, turns + 1):
        response = chat(gw_user, session_id=sid, messages=[user(f"turn {i}")])
        assert response.status_code == 200, response.text
    return sid


def _turn_request(fake, text: str) -> dict:
    (request,) = [r for r in fake.requests if r["messages"][0] == SYSTEM and r["messages"][-1] == user(text)]
    return request


def _summaries(gateway_server, sid: str) -> list[dict]:
    return [r for r in db_rows(gateway_server.settings.database_url, sid) if r["kind"] == "summary"]


def test_summary_is_stored_hidden_and_injected_after_the_system_prompt(gw_user, fake, gateway_server):
    sid = _summarizing_turns(gw_user, 1)
    assert [r["kind"] for r in db_rows(gateway_server.settings.database_url, sid)] == ["chat"] * 2  # nothing falls out yet
    chat(gw_user, session_id=sid, messages=[user("turn 2")]).raise_for_status()
    assert len(_turn_request(fake, "turn 2")["messages"]) == 4  # system, turn 1, its reply, turn 2
    # After turn 2 the next call's window (2 messages) no longer holds turn 1: it is summarised now.
    kinds = [r["kind"] for r in db_rows(gateway_server.settings.database_url, sid)]
    assert kinds == ["chat"] * 4 + ["summary"]
    (summary,) = _summaries(gateway_server, sid)
    assert summary["role"] == "system"

    chat(gw_user, session_id=sid, messages=[user("turn 3")]).raise_for_status()
    assert [m["content"] for m in messages(gw_user, sid)] == [
        "turn 1", "reply to: turn 1", "turn 2", "reply to: turn 2", "turn 3", "reply to: turn 3"
    ]
    assert _turn_request(fake, "turn 3")["messages"] == [
        SYSTEM,
        {"role": "system", "content": "Summary of the earlier conversation:\n" + summary["content"]},
        user("turn 2"), assistant("reply to: turn 2"), user("turn 3"),
    ]

    chat(gw_user, session_id=sid, messages=[user("turn 4")]).raise_for_status()
    summaries = _summaries(gateway_server, sid)
    assert len(summaries) == 3
    assert summaries[0]["content"] in summaries[1]["content"]  # incremental: old summary + newly dropped
    sent = _turn_request(fake, "turn 4")["messages"]
    assert sent[1] == {"role": "system", "content": "Summary of the earlier conversation:\n" + summaries[1]["content"]}
    assert sent[2:] == [user("turn 3"), assistant("reply to: turn 3"), user("turn 4")]


def test_summary_is_written_by_the_sessions_model_and_is_incremental(gw_user, fake, gateway_server):
    sid = _summarizing_turns(gw_user, 2)
    summary_requests = [r for r in fake.requests if r["messages"][0] != SYSTEM]
    assert len(summary_requests) == 1, "the dropped messages were not condensed by the session's model (fake-a)"
    assert summary_requests[0]["model"] == "fake-a"
    first_text = str(summary_requests[0]["messages"])
    assert "turn 1" in first_text and "reply to: turn 1" in first_text and "turn 2" not in first_text

    chat(gw_user, session_id=sid, messages=[user("turn 3")]).raise_for_status()
    first_summary = _summaries(gateway_server, sid)[0]["content"]
    second = [r for r in fake.requests if r["messages"][0] != SYSTEM][1:]
    assert len(second) == 1
    second_text = second[0]["messages"][-1]["content"]
    assert first_summary in second_text and "turn 2" in second_text and "reply to: turn 2" in second_text
