"""chatkeep as a LangGraph checkpointer: ChatkeepSaver (sync) and AsyncChatkeepSaver (asyncio),
whose threads are chatkeep sessions.

The savers are imported on first use, so the server (which only needs `thread_config` and the
routes) does not import LangGraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatkeep.checkpoint.service import thread_config

if TYPE_CHECKING:
    from chatkeep.checkpoint.aio import AsyncChatkeepSaver
    from chatkeep.checkpoint.saver import ChatkeepSaver

__all__ = ["AsyncChatkeepSaver", "ChatkeepSaver", "thread_config"]


def __getattr__(name: str) -> Any:
    if name == "ChatkeepSaver":
        from chatkeep.checkpoint.saver import ChatkeepSaver

        return ChatkeepSaver
    if name == "AsyncChatkeepSaver":
        from chatkeep.checkpoint.aio import AsyncChatkeepSaver

        return AsyncChatkeepSaver
    raise AttributeError(f"module 'chatkeep.checkpoint' has no attribute {name!r}")
