"""The route class every router uses: strict JSON bodies.

Bodies are parsed with orjson, which refuses what the standard library lets through (NaN,
Infinity, invalid UTF-8, lone surrogates), so such input is a 400 instead of a stored surprise
or a 500 later. A body sent with a non-JSON Content-Type gets a clear 415.
"""

from __future__ import annotations

import email.message
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from chatkeep.errors import ChatkeepError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UnsupportedMediaType(ChatkeepError):
    """The body is not JSON."""

    status = 415
    code = "unsupported_media_type"


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class JSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            request = StrictJSONRequest(request.scope, request.receive)
            if request.method in BODY_METHODS:
                content_type = request.headers.get("content-type")
                if content_type and not _is_json(content_type) and await request.body():
                    raise UnsupportedMediaType(
                        "the body must be JSON, sent with Content-Type: application/json"
                    )
            return await handler(request)

        return strict_handler
