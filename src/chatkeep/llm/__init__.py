"""Upstream model clients (OpenAI-compatible over httpx, the offline echo model), token
counting and prices."""

from chatkeep.llm.models import LLM, ModelSpec

__all__ = ["LLM", "ModelSpec"]
