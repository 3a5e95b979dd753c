"""The one Settings object. Precedence: CLI flag > environment (CHATKEEP_*) > TOML file > default.

Imports nothing of ours, so every layer may depend on it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class ModelConfig(BaseModel):
    """One model in the TOML config: `[models.NAME]`."""

    upstream_model: str | None = Field(default=None, description="Name sent upstream (default: NAME).")
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL (default: upstream_base_url).")
    api_key_env: str | None = Field(default=None, description="Environment variable holding its API key.")
    context_window: int = Field(default=128_000, gt=0)
    input_price_per_1m: float = Field(default=0.0, ge=0, description="USD per 1M prompt tokens.")
    output_price_per_1m: float = Field(default=0.0, ge=0, description="USD per 1M completion tokens.")


class AgentConfig(BaseModel):
    """One LangGraph agent in the TOML config: `[agents.NAME] graph = "module:attr"`."""

    graph: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="A compiled graph or a StateGraph, as module:attr.")


class Settings(BaseSettings):
    """Everything an operator can set. Field names map to CHATKEEP_<NAME> variables."""

    model_config = SettingsConfigDict(env_prefix="CHATKEEP_", extra="ignore")

    database_url: str = "sqlite:///./data/chatkeep.db"
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    upstream_base_url: str | None = None
    upstream_api_key: str | None = Field(default=None, repr=False)
    admin_key: str | None = Field(default=None, repr=False)
    secret_key: str | None = Field(default=None, repr=False)
    allow_anonymous: bool = False
    config: Path | None = None
    log_level: str = "INFO"
    # Create a first user and print its key when a fresh database has no users (`make run`).
    bootstrap_user: bool = True

    # Server defaults for session settings (below the user's preferences).
    default_model: str = "echo"
    default_temperature: float | None = None
    default_max_tokens: int | None = None
    default_max_history_messages: int = 20

    # Models: the built-in "echo" is always there; others come from [models.NAME] in the TOML
    # file, or pass through to upstream_base_url when it is set.
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    summary_model: str | None = None
    # Run agents besides the built-in "chat": LangGraph graphs checkpointed by chatkeep.
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    default_context_window: int = 128_000
    context_margin_tokens: int = 256
    # Tokens kept free for the reply when a request sets no max_tokens.
    default_reply_reserve_tokens: int = 1024
    summary_max_input_messages: int = 200
    upstream_timeout_seconds: float = 120.0
    upstream_connect_retries: int = 2
    # Pause between streamed echo tokens (makes streaming visible in a UI and testable).
    echo_delay_ms: int = 0

    # Background runs and their event streams.
    stream_max_events: int = 10_000  # events kept per stream (older ones trimmed)
    run_event_retention_seconds: float = 3600.0  # a finished run's events stay replayable this long
    run_lease_seconds: float = 30.0  # a run whose process stops heart-beating this long is "interrupted"
    run_heartbeat_seconds: float = 1.0
    run_reaper_interval_seconds: float = 5.0
    run_first_token_estimate_seconds: float = 10.0  # task-status estimate before the first token
    sse_keepalive_seconds: float = 15.0
    # A run started while another runs in the same session: refused (409) or queued.
    run_multitask: Literal["reject", "enqueue"] = "reject"
    redis_max_connections: int = 1000  # each open event stream holds one while it waits
    shutdown_grace_seconds: float = 10.0
    # Housekeeping: anonymous sessions never claimed are purged after this long without activity.
    anonymous_session_ttl_days: float = 30.0
    maintenance_interval_seconds: float = 600.0  # in-flight streams get this long to finish on shutdown

    # Browsers and external identity providers (see README "Sign-in").
    visitor_cookie_max_age_seconds: int = 365 * 24 * 3600
    session_cookie_max_age_seconds: int = 30 * 24 * 3600
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_hs256_secret: str | None = Field(default=None, repr=False)
    jwt_public_key_file: Path | None = None  # PEM public key (RS256 / ES256)
    jwt_jwks_file: Path | None = None  # a JWKS document (RS256 / ES256 keys, chosen by `kid`)
    jwt_leeway_seconds: float = 30.0

    # Sharing and forks. The note the model sees in a fork of another user's conversation
    # (empty: no note).
    fork_note: str = (
        "This conversation was started by another user and shared; the current user continued it as "
        "their own copy. The current user may not have the same access as the original author (accounts, "
        "files, tools, permissions). If something earlier in the conversation is not available to them, "
        "explain that clearly instead of failing silently."
    )

    # Limits.
    max_body_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 1024 * 1024
    max_messages_per_request: int = 500
    max_title_chars: int = 200
    max_metadata_bytes: int = 64 * 1024
    default_page_size: int = 50
    max_page_size: int = 500

    # Connection pool (PostgreSQL; SQLite uses a small fixed pool).
    db_pool_size: int = 10
    db_max_overflow: int = 20

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("CHATKEEP_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and TOML file, with explicit overrides (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
