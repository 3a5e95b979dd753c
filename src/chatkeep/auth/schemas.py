"""Wire shapes for users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "alice", "email": "alice@example.com"}]},
    )

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str | None
    preferences: dict[str, Any]
    created_at: datetime


class ApiKey(BaseModel):
    """An API key as listed: never the key itself."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    name: str | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class UserWithKey(BaseModel):
    """A new user and its first API key; the key is shown this one time only."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user": {
                        "id": "0193a5e0-7c1e-7b3a-9f00-3c2d1e0f4a5b",
                        "name": "alice",
                        "email": "alice@example.com",
                        "preferences": {},
                        "created_at": "2026-11-22T10:00:00Z",
                    },
                    "api_key": "ck_3q2-7wEVhVt1ajN0V5yZsS8m4Xf0cP9lKx2bQ6rT1uY",
                    "api_key_id": "0193a5e0-7c1f-7e55-8a00-1b2c3d4e5f60",
                }
            ]
        }
    )

    user: User
    api_key: str
    api_key_id: str


class BrowserSession(BaseModel):
    """The signed-in user of a browser session cookie."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": "0193a5e0-7c1e-7b3a-9f00-3c2d1e0f4a5b", "claimed_sessions": 0}]})

    user_id: str
    claimed_sessions: int = Field(default=0, description="Anonymous sessions of this browser's visitor that moved to the user.")


class ClaimResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"claimed_sessions": 3}]})

    claimed_sessions: int
