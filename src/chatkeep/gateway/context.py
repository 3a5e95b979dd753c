"""The context a model sees: [system prompt] + [summary] + [history window] + [new messages],
trimmed oldest-first to the model's token budget, tool calls never split from their results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatkeep.db.tables import ChatSessionRow, MessageRow
from chatkeep.errors import InvalidInput
from chatkeep.llm.models import ModelSpec
from chatkeep.llm.tokens import TokenCounter

SUMMARY_PREFIX = "Summary of the earlier conversation:\n"


def to_openai(row: MessageRow) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": row.role,
        "content": row.content if row.content_parts is None else row.content_parts,
    }
    if row.name:
        message["name"] = row.name
    if row.tool_calls:
        message["tool_calls"] = row.tool_calls
    if row.tool_call_id:
        message["tool_call_id"] = row.tool_call_id
    return message


def group_turns(rows: list[MessageRow]) -> list[list[MessageRow]]:
    """Split history into units that are kept or dropped whole: an assistant message that calls
    tools together with the tool results that follow it; any other message alone. Tool results
    whose call is not in the window are dropped (a model must never see a result without its call)."""
    groups: list[list[MessageRow]] = []
    for row in rows:
        if row.role == "tool":
            if groups and groups[-1][0].tool_calls:
                groups[-1].append(row)
            continue
        groups.append([row])
    return groups


@dataclass(frozen=True, slots=True)
class BuiltContext:
    messages: list[dict[str, Any]]
    token_count: int
    budget: int
    history_count: int
    # Oldest history seq that made it in (or the next seq when none did): older ones fell out.
    first_kept_seq: int
    summary_included: bool


def budget_for(spec: ModelSpec, reply_tokens: int | None, *, reserve: int, margin: int) -> int:
    return spec.context_window - (reply_tokens or reserve) - margin


def build_context(
    tokens: TokenCounter,
    *,
    session: ChatSessionRow,
    summary: str | None,
    history: list[MessageRow],
    new_messages: list[dict[str, Any]],
    budget: int,
    note: str | None = None,
) -> BuiltContext:
    """`note`: a system message after the system prompt (e.g. the fork note, see chatkeep.sharing)."""
    head: list[dict[str, Any]] = []
    if session.system_prompt:
        head.append({"role": "system", "content": session.system_prompt})
    if note:
        head.append({"role": "system", "content": note})
    if summary:
        head.append({"role": "system", "content": SUMMARY_PREFIX + summary})
    fixed = tokens.count_messages(head + new_messages)
    if fixed > budget:
        raise InvalidInput(
            f"the new messages need {fixed} tokens but the model's budget is {budget}",
            code="context_length_exceeded",
            field="messages",
        )
    groups = group_turns(history)
    sizes = [sum(tokens.count_message(to_openai(r)) for r in group) for group in groups]
    total = fixed + sum(sizes)
    start = 0
    while start < len(groups) and total > budget:
        total -= sizes[start]
        start += 1
    kept = [row for group in groups[start:] for row in group]
    next_seq = session.message_count + 1
    return BuiltContext(
        messages=head + [to_openai(r) for r in kept] + new_messages,
        token_count=total,
        budget=budget,
        history_count=len(kept),
        first_kept_seq=kept[0].seq if kept else next_seq,
        summary_included=bool(summary),
    )
