"""Titles derived from a session's first user message."""

from __future__ import annotations

MAX_AUTO_TITLE = 60
ELLIPSIS = "…"


def title_from_text(text: str) -> str | None:
    """First non-blank line, spaces collapsed, cut at a word boundary to ≤60 chars with "…"."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if not line:
        return None
    if len(line) <= MAX_AUTO_TITLE:
        return line
    room = MAX_AUTO_TITLE - len(ELLIPSIS)
    cut = line[: room + 1]
    space = cut.rfind(" ")
    # Cut at the last word boundary, unless that would leave almost nothing (one huge word).
    head = cut[:space] if space >= room // 2 else line[:room]
    return head.rstrip(" ,.;:-") + ELLIPSIS
