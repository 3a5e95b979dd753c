"""GET /v1/models and GET /v1/sessions/{id}/context (what the next call would send)."""

from __future__ import annotations

import httpx

from chatkeep.llm.tokens import TokenCounter
from tests.gateway.conftest import SMALL_CONTEXT, SMALL_MODEL
from tests.gateway.helpers import add_messages, assert_openai_error, assistant, chat, new_session, user

COUNTER = TokenCounter()
SYSTEM = {"role": "system", "content": "You are terse."}
HISTORY = [user("q1"), assistant("a1"), user("q2"), assistant("a2"), user("q3"), assistant("a3")]


def test_models_are_listed_in_openai_format(oai, gw_user, gateway_server):
    assert {"echo", SMALL_MODEL, "fake-priced"} <= {m.id for m in oai.models.list()}
    body = gw_user.get("/v1/models").json()
    assert body["object"] == "list" and all(m["object"] == "model" for m in body["data"])
    anonymous = httpx.get(f"{gateway_server.url}/v1/models")
    assert_openai_error(anonymous, 401)


def _context(client: httpx.Client, sid: str, **params) -> dict:
    response = client.get(f"/v1/sessions/{sid}/context", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_context_view_is_exactly_what_the_next_call_sends(gw_user, fake):
    sid = new_session(gw_user, model="fake-a", system_prompt=SYSTEM["content"], max_history_messages=4)
    add_messages(gw_user, sid, HISTORY)
    view = _context(gw_user, sid)
    assert view["messages"] == [SYSTEM, *HISTORY[-4:]]
    assert view["token_count"] > 0 and view["token_count"] == COUNTER.count_messages(view["messages"])
    assert view["history_messages"] == 4 and view["model"] == "fake-a"
    assert chat(gw_user, session_id=sid, messages=[user("q4")]).status_code == 200
    assert fake.last()["messages"] == [*view["messages"], user("q4")]
    # And again after the turn was stored.
    view = _context(gw_user, sid)
    assert view["messages"] == [SYSTEM, user("q3"), assistant("a3"), user("q4"), assistant("reply to: q4")]
    assert chat(gw_user, session_id=sid, messages=[user("q5")]).status_code == 200
    assert fake.last()["messages"] == [*view["messages"], user("q5")]


def test_context_view_for_a_smaller_model_is_trimmed_to_its_budget(gw_user):
    history = [(user if i % 2 == 0 else assistant)(f"message {i}: " + "lorem ipsum " * 12) for i in range(16)]
    sid = new_session(gw_user, model="fake-a", max_history_messages=100)
    add_messages(gw_user, sid, history)
    assert len(_context(gw_user, sid)["messages"]) == 16
    view = _context(gw_user, sid, model=SMALL_MODEL)
    assert view["context_window"] == SMALL_CONTEXT and view["budget"] == SMALL_CONTEXT - 50 - 10
    kept = view["messages"]
    assert 0 < len(kept) < 16 and kept == history[-len(kept) :]
    assert view["token_count"] == COUNTER.count_messages(kept) <= view["budget"]


def test_context_view_of_a_summarizing_session_matches_the_next_call(gw_user, fake):
    sid = new_session(gw_user, model="fake-a", system_prompt=SYSTEM["content"], summarization=True, max_history_messages=2)
    for i in range(1, 4):
        chat(gw_user, session_id=sid, messages=[user(f"turn {i}")]).raise_for_status()
    view = _context(gw_user, sid)
    assert view["summary_included"] is True
    chat(gw_user, session_id=sid, messages=[user("turn 4")]).raise_for_status()
    (sent,) = [r["messages"] for r in fake.requests if r["messages"][-1] == user("turn 4")]
    assert sent == [*view["messages"], user("turn 4")]


def test_context_view_of_unknown_or_foreign_session_is_404(gw_user, gw_other):
    sid = new_session(gw_other, model="fake-a")
    assert gw_user.get(f"/v1/sessions/{sid}/context").status_code == 404
    assert gw_user.get("/v1/sessions/no-such-session/context").status_code == 404
    assert gw_other.get(f"/v1/sessions/{sid}/context").status_code == 200
