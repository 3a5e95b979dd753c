"""Wire shapes of the checkpoint capability."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ThreadConfigurable(BaseModel):
    thread_id: str
    user_id: str
    model_name: str
    temperature: float | None
    max_tokens: int | None


class ThreadConfig(BaseModel):
    """The LangGraph config that runs a graph on this session (thread_id == session id)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "configurable": {
                        "thread_id": "0193a5e0-8a2b-7c4d-9e00-5f6a7b8c9d0e",
                        "user_id": "0193a5df-1111-7000-8000-000000000001",
                        "model_name": "gpt-4o-mini",
                        "temperature": 0.7,
                        "max_tokens": None,
                    }
                }
            ]
        }
    )

    configurable: ThreadConfigurable
