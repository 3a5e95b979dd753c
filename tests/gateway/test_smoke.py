"""The gateway with the real openai client against a fake upstream."""


def test_store_then_continue(oai, fake, gw_user):
    first = oai.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "hi"}], extra_body={"store": True})
    sid = first.model_extra["session_id"]
    assert first.choices[0].message.content == "reply to: hi"
    oai.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "more"}], extra_body={"session_id": sid})
    sent = fake.last()["messages"]
    assert [m["content"] for m in sent] == ["hi", "reply to: hi", "more"]
    stored = gw_user.get(f"/v1/sessions/{sid}/messages").json()["data"]
    assert [m["content"] for m in stored] == ["hi", "reply to: hi", "more", "reply to: more"]
