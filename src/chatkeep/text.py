"""Text of OpenAI-style message content (a string, or a list of content parts)."""

from __future__ import annotations

from typing import Any


def content_text(content: str | list[Any] | None) -> str:
    """The human-readable text of a message's content (text parts joined for part lists)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        part = part if isinstance(part, dict) else part.model_dump()
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts)
