"""JWT bearer tokens from an external identity provider (Keycloak, Auth0, …), checked with PyJWT.

Settings: `jwt_issuer`, `jwt_audience`, and either `jwt_hs256_secret` or public keys for
RS256/ES256 (`jwt_public_key_file`: PEM; `jwt_jwks_file`: a JWKS document). A token must be
signed by one of them, unexpired, for the audience and from the issuer (when set); its `sub`
names the chatkeep user (created on first sight).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jwt

from chatkeep.config import Settings
from chatkeep.errors import Unauthorized

PUBLIC_ALGORITHMS = ["RS256", "ES256"]


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


@dataclass
class JWTVerifier:
    issuer: str | None
    audience: str | None
    leeway: float
    hs256_secret: str | None = None
    pem_key: Any = None
    jwks: dict[str | None, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> JWTVerifier | None:
        if not (settings.jwt_hs256_secret or settings.jwt_public_key_file or settings.jwt_jwks_file):
            return None
        verifier = cls(settings.jwt_issuer, settings.jwt_audience, settings.jwt_leeway_seconds, settings.jwt_hs256_secret)
        if settings.jwt_public_key_file:
            verifier.pem_key = settings.jwt_public_key_file.read_text()
        if settings.jwt_jwks_file:
            document = json.loads(settings.jwt_jwks_file.read_text())
            for jwk in jwt.PyJWKSet.from_dict(document).keys:
                verifier.jwks[jwk.key_id] = jwk.key
        return verifier

    def _keys(self, header: dict[str, Any]) -> list[tuple[Any, list[str]]]:
        alg = header.get("alg")
        if alg == "HS256":
            return [(self.hs256_secret, ["HS256"])] if self.hs256_secret else []
        if alg not in PUBLIC_ALGORITHMS:
            return []
        kid = header.get("kid")
        if kid is not None and kid in self.jwks:
            return [(self.jwks[kid], [alg])]
        keys = ([self.pem_key] if self.pem_key else []) + list(self.jwks.values())
        return [(key, [alg]) for key in keys]

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; 401 for anything not valid."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid bearer token", code="invalid_token") from None
        options = {"require": ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])}
        last: jwt.PyJWTError | None = None
        for key, algorithms in self._keys(header):
            try:
                return jwt.decode(
                    token, key, algorithms=algorithms, audience=self.audience, issuer=self.issuer,
                    leeway=self.leeway, options=options,
                )
            except jwt.ExpiredSignatureError:
                raise Unauthorized("the bearer token has expired", code="token_expired") from None
            except jwt.InvalidSignatureError as exc:
                last = exc
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid bearer token: {exc}", code="invalid_token") from None
        raise Unauthorized("invalid bearer token: signature not accepted", code="invalid_token") from last
