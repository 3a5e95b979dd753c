"""The OpenAPI schema served at /openapi.json documents the whole API, with examples."""

from __future__ import annotations

import pytest

OPERATIONS = {
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions"),
    ("get", "/v1/sessions/{session_id}"),
    ("patch", "/v1/sessions/{session_id}"),
    ("delete", "/v1/sessions/{session_id}"),
    ("post", "/v1/sessions/{session_id}/restore"),
    ("post", "/v1/sessions/{session_id}/messages"),
    ("get", "/v1/sessions/{session_id}/messages"),
    ("get", "/v1/sessions/{session_id}/messages/{message_id}"),
    ("post", "/v1/admin/users"),
    ("get", "/v1/admin/users"),
    ("get", "/v1/me"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(anon) -> dict:
    response = anon.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in HTTP_METHODS
    }


def component(spec: dict, ref: str) -> dict:
    assert ref.startswith("#/components/schemas/"), ref
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def refs(schema: dict) -> list[str]:
    """The component refs a body schema stands for (through anyOf/oneOf; `null` is no body)."""
    if "$ref" in schema:
        return [schema["$ref"]]
    branches = schema.get("anyOf", []) + schema.get("oneOf", [])
    return [ref for branch in branches if branch != {"type": "null"} for ref in refs(branch)]


def test_every_endpoint_is_listed(spec):
    assert OPERATIONS <= set(operations(spec))


def test_every_request_body_has_an_example(spec):
    bodies = {key: op["requestBody"] for key, op in operations(spec).items() if "requestBody" in op}
    assert {("post", "/v1/sessions"), ("patch", "/v1/sessions/{session_id}"),
            ("post", "/v1/sessions/{session_id}/messages"), ("post", "/v1/admin/users")} <= set(bodies)
    for key, body in bodies.items():
        media = body["content"]["application/json"]
        schemas = refs(media["schema"])
        assert schemas, (key, media)
        for ref in schemas:
            examples = component(spec, ref).get("examples") or media.get("examples") or media.get("example")
            assert examples, f"{key}: {ref} has no example"


def test_error_responses_use_the_error_schema(spec):
    for key, op in operations(spec).items():
        # The foundation's endpoints (the OpenAI-compatible gateway will answer in OpenAI's shape).
        if key not in OPERATIONS or not key[1].startswith("/v1/"):
            continue
        assert "401" in op["responses"], key
        for status, response in op["responses"].items():
            if not status.startswith("4"):
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            assert "$ref" in schema, f"{key} {status}: no error schema"
            error = component(spec, schema["$ref"])
            assert {"error", "code"} <= set(error.get("properties", {})), f"{key} {status}: {schema['$ref']}"
            assert {"error", "code"} <= set(error.get("required", [])), f"{key} {status}: {schema['$ref']}"


def test_bearer_security_scheme_is_declared_and_used(spec):
    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s["type"] == "http" and s["scheme"].lower() == "bearer"]
    assert len(bearer) == 1
    for (method, path), op in operations(spec).items():
        if (method, path) not in OPERATIONS:
            continue
        names = {name for requirement in op.get("security", []) for name in requirement}
        if path.startswith("/v1/"):
            assert bearer[0] in names, (method, path)
        else:
            assert not names, (method, path)
