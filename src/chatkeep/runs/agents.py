"""LangGraph agents: configured graphs that runs execute with chatkeep's checkpointer (thread id
= session id), streaming the graph's AI message tokens as message.delta events."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

from chatkeep.config import Settings
from chatkeep.db import Database
from chatkeep.errors import InvalidInput

CHAT_AGENT = "chat"


class GraphAgents:
    """The configured graphs, compiled once per process with chatkeep's async saver."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._graphs: dict[str, Any] = {}
        self._saver: Any = None

    def names(self) -> list[str]:
        return [CHAT_AGENT, *self.settings.agents]

    def check(self, agent: str) -> None:
        if agent != CHAT_AGENT and agent not in self.settings.agents:
            raise InvalidInput(
                f"unknown agent {agent!r}; available: {', '.join(self.names())}", code="unknown_agent", field="agent"
            )

    def graph(self, agent: str) -> Any:
        if agent not in self._graphs:
            from langgraph.graph import StateGraph  # imported only when a graph agent runs

            from chatkeep.checkpoint import AsyncChatkeepSaver

            if self._saver is None:
                self._saver = AsyncChatkeepSaver(self.database)
            module, _, attr = self.settings.agents[agent].graph.partition(":")
            found: Any = importlib.import_module(module)
            for part in attr.split("."):
                found = getattr(found, part)
            if isinstance(found, StateGraph):
                self._graphs[agent] = found.compile(checkpointer=self._saver)
            else:
                self._graphs[agent] = found.copy(update={"checkpointer": self._saver})
        return self._graphs[agent]

    async def stream(
        self, agent: str, messages: list[dict[str, Any]], *, session_id: str, owner_id: str
    ) -> AsyncIterator[str]:
        """Run the graph on the new messages; yield the text of its AI message tokens."""
        from langchain_core.messages import AIMessage, AIMessageChunk, convert_to_messages

        config = {"configurable": {"thread_id": session_id, "user_id": owner_id, "agent": agent}}
        inputs = {"messages": convert_to_messages(messages)}
        async for message, _ in self.graph(agent).astream(inputs, config, stream_mode="messages"):
            if isinstance(message, (AIMessage, AIMessageChunk)) and isinstance(message.content, str) and message.content:
                yield message.content
