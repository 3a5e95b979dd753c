"""The model registry: which models exist, where they live, what they cost, and their clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from chatkeep.config import Settings
from chatkeep.errors import NotFound
from chatkeep.llm.echo import ECHO_MODEL, EchoClient
from chatkeep.llm.tokens import TokenCounter
from chatkeep.llm.upstream import UpstreamClient


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    upstream_model: str
    base_url: str | None  # None for the built-in echo model
    api_key: str | None
    context_window: int
    input_price_per_1m: float = 0.0
    output_price_per_1m: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_price_per_1m + completion_tokens * self.output_price_per_1m) / 1e6


class ModelClient(Protocol):
    async def complete(self, spec: ModelSpec, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def open_stream(self, spec: ModelSpec, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...


class LLM:
    """Built once per process in the app lifespan; reached through a dependency."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenCounter()
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self.echo = EchoClient(self.tokens, delay_ms=settings.echo_delay_ms)
        self.upstream = UpstreamClient(self.http, retries=settings.upstream_connect_retries)
        echo = ModelSpec(ECHO_MODEL, ECHO_MODEL, None, None, settings.default_context_window)
        self.specs: dict[str, ModelSpec] = {ECHO_MODEL: echo}
        for name, config in settings.models.items():
            self.specs[name] = ModelSpec(
                name=name,
                upstream_model=config.upstream_model or name,
                base_url=config.base_url or settings.upstream_base_url,
                api_key=os.environ.get(config.api_key_env) if config.api_key_env else settings.upstream_api_key,
                context_window=config.context_window,
                input_price_per_1m=config.input_price_per_1m,
                output_price_per_1m=config.output_price_per_1m,
            )

    async def close(self) -> None:
        await self.http.aclose()

    def resolve(self, name: str) -> ModelSpec:
        """The spec of a model; unknown names pass through to the default upstream if there is one."""
        spec = self.specs.get(name)
        if spec is not None and (spec.base_url or spec.name == ECHO_MODEL):
            return spec
        if spec is None and self.settings.upstream_base_url:
            return ModelSpec(
                name=name,
                upstream_model=name,
                base_url=self.settings.upstream_base_url,
                api_key=self.settings.upstream_api_key,
                context_window=self.settings.default_context_window,
            )
        raise NotFound(f"model {name!r} is not configured", code="model_not_found", field="model")

    def client(self, spec: ModelSpec) -> ModelClient:
        return self.echo if spec.base_url is None else self.upstream

    def model_names(self) -> list[str]:
        return list(self.specs)
