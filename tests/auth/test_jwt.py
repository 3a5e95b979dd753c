"""JWT bearer tokens from an external identity provider, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatkeep.db.migrate import upgrade
from tests.conftest import ADMIN_KEY, LiveServer, _ServerThread, drop_database, fresh_database_url, make_settings, new_user

ISSUER = "https://idp.example.com/realms/test"
AUDIENCE = "chatkeep"
HS_SECRET = "hs256-shared-secret-for-tests-0123456789"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def jwt_server(backend, tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"jwt-{backend}")
    url = fresh_database_url(backend, "jwt", tmp)
    upgrade(url)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    (tmp / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"}]}))
    (tmp / "ec.pem").write_bytes(
        EC_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    settings = make_settings(
        url, secret_key="s", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_hs256_secret=HS_SECRET,
        jwt_jwks_file=tmp / "jwks.json", jwt_public_key_file=tmp / "ec.pem", jwt_leeway_seconds=0,
    )
    with _ServerThread(settings) as thread:
        yield LiveServer(url=f"http://127.0.0.1:{thread.port}", settings=settings, backend=backend)
    drop_database(url)


def token(sub: str, *, key=HS_SECRET, algorithm="HS256", headers=None, **claims) -> str:
    now = int(time.time())
    payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm, headers=headers)


def call(server: LiveServer, bearer: str, path: str = "/v1/me") -> httpx.Response:
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {bearer}"}, timeout=30)


def test_hs256_token_maps_sub_to_a_user_created_on_first_sight(jwt_server):
    sub = f"user-{time.time_ns()}"
    first = call(jwt_server, token(sub, preferred_username=f"name-{sub}", email="x@example.com"))
    assert first.status_code == 200, first.text
    user = first.json()
    assert user["name"] == f"name-{sub}" and user["email"] == "x@example.com"
    assert call(jwt_server, token(sub)).json()["id"] == user["id"]
    # The user has sessions like anyone else.
    created = httpx.post(jwt_server.url + "/v1/sessions", headers={"Authorization": f"Bearer {token(sub)}"}, json={})
    assert created.status_code == 201
    assert [s["id"] for s in call(jwt_server, token(sub), "/v1/sessions").json()["data"]] == [created.json()["id"]]
    # Another subject is another user, even with the same preferred_username.
    other = call(jwt_server, token(sub + "-2", preferred_username=f"name-{sub}")).json()
    assert other["id"] != user["id"] and other["name"] != user["name"]


def test_rs256_from_jwks_and_es256_from_pem(jwt_server):
    sub = f"rsa-{time.time_ns()}"
    rs = token(sub, key=RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    assert call(jwt_server, rs).status_code == 200
    es = token(sub, key=EC_KEY, algorithm="ES256")
    assert call(jwt_server, es).json()["id"] == call(jwt_server, rs).json()["id"]


@pytest.mark.parametrize(
    "case",
    ["wrong_hs_secret", "wrong_rsa_key", "expired", "wrong_audience", "wrong_issuer", "no_sub", "alg_none", "garbage"],
)
def test_invalid_tokens_are_401(jwt_server, case):
    sub = f"bad-{time.time_ns()}"
    bad = {
        "wrong_hs_secret": lambda: token(sub, key="another-secret-that-is-long-enough-000"),
        "wrong_rsa_key": lambda: token(sub, key=OTHER_RSA, algorithm="RS256", headers={"kid": "rsa-1"}),
        "expired": lambda: token(sub, exp=int(time.time()) - 60),
        "wrong_audience": lambda: token(sub, aud="someone-else"),
        "wrong_issuer": lambda: token(sub, iss="https://evil.example.com"),
        "no_sub": lambda: token(None),
        "alg_none": lambda: jwt.encode({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, None, algorithm="none"),
        "garbage": lambda: "eyJhbGciOi.not.valid",
    }[case]()
    response = call(jwt_server, bad)
    assert response.status_code == 401, response.text
    assert response.json()["code"] in {"invalid_token", "token_expired"}
    if case == "expired":
        assert response.json()["code"] == "token_expired"


def test_api_keys_still_work_next_to_jwt(jwt_server):
    with httpx.Client(base_url=jwt_server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        created = new_user(admin, "keyed")
    assert call(jwt_server, created["api_key"]).json()["id"] == created["user"]["id"]
    assert call(jwt_server, "ck_not-a-real-key").status_code == 401
