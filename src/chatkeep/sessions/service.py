"""Use cases for sessions and messages, and every access check on them."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth import service as auth_service
from chatkeep.auth.principal import VISITOR_PREFIX, Principal
from chatkeep.checkpoint import service as checkpoint_service
from chatkeep.config import Settings
from chatkeep.db.base import utcnow
from chatkeep.db.tables import ChatSessionRow, MessageRow
from chatkeep.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from chatkeep.idempotency import service as idempotency
from chatkeep.ids import new_id
from chatkeep.pagination import Page, decode_cursor, encode_cursor
from chatkeep.sessions import repository
from chatkeep.sessions.schemas import (
    ChatSession,
    MAX_SEQ,
    Message,
    MessageBatch,
    MessageIn,
    MessageList,
    MessageQuery,
    SessionCreate,
    SessionFilters,
    SessionUpdate,
)
from chatkeep.sessions.titles import title_from_text
from chatkeep.text import content_text


# Keys usable in `metadata[key]=value` filters (they become JSON paths in SQL).
METADATA_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"


# --- sessions -------------------------------------------------------------------------------


def to_session(row: ChatSessionRow) -> ChatSession:
    return ChatSession(
        id=row.id,
        title=row.title,
        agent=row.agent,
        model=row.model,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        system_prompt=row.system_prompt,
        max_history_messages=row.max_history_messages,
        summarization=row.summarization,
        metadata=row.metadata_,
        pinned=row.pinned,
        archived=row.archived,
        message_count=row.message_count,
        last_message_at=row.last_message_at,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_cost=row.total_cost,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        active_run_id=row.active_run_id,
        forked_from=row.forked_from,
    )


async def get_row(
    db: AsyncSession,
    principal: Principal,
    session_id: str,
    need: Access = Access.READ,
    *,
    include_deleted: bool = False,
    lock: bool = False,
) -> ChatSessionRow:
    """The session if the caller may `need` it; otherwise 404, whether it exists or not.

    With `lock` the row stays locked until the transaction ends (PostgreSQL; SQLite writers are
    serialised anyway): for checks that must hold until the write that depends on them.
    """
    row = await repository.get_session(db, session_id, for_update=lock)
    if row is None or row.owner_id != principal.owner_id or (row.deleted_at and not include_deleted):
        raise NotFound("session not found", code="session_not_found")
    return row


async def get(db: AsyncSession, principal: Principal, session_id: str) -> ChatSession:
    return to_session(await get_row(db, principal, session_id))


def _check_title(title: str | None, settings: Settings) -> str | None:
    if title is None:
        return None
    title = title.strip()
    if not title:
        raise InvalidInput("title must not be blank", code="invalid_title", field="title")
    if len(title) > settings.max_title_chars:
        raise InvalidInput(
            f"title is longer than {settings.max_title_chars} characters", code="title_too_long", field="title"
        )
    return title


def _json_size(value: Any, field: str) -> int:
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:  # e.g. nested deeper than 255 levels
        raise InvalidInput(f"{field} cannot be stored: {exc}", code="invalid_json_value", field=field) from None


def _check_metadata(metadata: dict[str, Any], settings: Settings, field: str = "metadata") -> dict[str, Any]:
    if _json_size(metadata, field) > settings.max_metadata_bytes:
        raise PayloadTooLarge(
            f"{field} is larger than {settings.max_metadata_bytes} bytes", code="metadata_too_large", field=field
        )
    return metadata


def _check_system_prompt(prompt: str | None, settings: Settings) -> str | None:
    if prompt is not None and len(prompt.encode()) > settings.max_message_bytes:
        raise PayloadTooLarge(
            f"system_prompt is larger than {settings.max_message_bytes} bytes",
            code="content_too_large",
            field="system_prompt",
        )
    return prompt


async def defaults_for(db: AsyncSession, principal: Principal, settings: Settings) -> dict[str, Any]:
    """Session settings a new session takes when unset: the user's preferences, then the server's."""
    prefs: dict[str, Any] = {}
    if principal.kind == "user":
        prefs = (await auth_service.get_user(db, principal.id)).preferences
    return server_defaults(settings, prefs)


def server_defaults(settings: Settings, prefs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Session settings from preferences (if any), then the server's defaults."""
    prefs = prefs or {}
    return {
        "model": prefs.get("default_model") or settings.default_model,
        "temperature": prefs.get("default_temperature", settings.default_temperature),
        "max_tokens": prefs.get("default_max_tokens", settings.default_max_tokens),
        "max_history_messages": prefs.get("default_max_history_messages", settings.default_max_history_messages),
        "summarization": bool(prefs.get("enable_auto_summarization", False)),
        "system_prompt": prefs.get("custom_system_prompt"),
    }


async def create(
    db: AsyncSession, principal: Principal, data: SessionCreate, settings: Settings
) -> ChatSession:
    title = _check_title(data.title, settings)
    metadata = _check_metadata(data.metadata, settings)
    _check_system_prompt(data.system_prompt, settings)
    if data.id is not None and await repository.session_exists(db, data.id):
        raise Conflict("a session with this id already exists", code="session_exists", field="id")
    chosen = data.model_dump(include=set(data.model_fields_set) & {
        "model", "temperature", "max_tokens", "system_prompt", "max_history_messages", "summarization"
    }, exclude_none=True)
    values = {**await defaults_for(db, principal, settings), **chosen}
    row = await repository.insert_session(
        db,
        ChatSessionRow(
            **new_session_values(data.id or new_id(), principal.owner_id, data.agent, title, metadata, values)
        ),
    )
    return to_session(row)


def new_session_values(
    session_id: str,
    owner_id: str,
    agent: str,
    title: str | None,
    metadata: dict[str, Any],
    settings_values: dict[str, Any],
) -> dict[str, Any]:
    """The attributes of a new, empty session (for every way a session is created)."""
    now = utcnow()
    return {
        "id": session_id,
        "owner_id": owner_id,
        "title": title,
        "agent": agent,
        "metadata_": metadata,
        "pinned": False,
        "archived": False,
        "created_at": now,
        "updated_at": now,
        "message_count": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_cost": 0.0,
        **settings_values,
    }


async def list_sessions(
    db: AsyncSession,
    principal: Principal,
    filters: SessionFilters,
    *,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
) -> Page[ChatSession]:
    for key in filters.metadata:
        if not METADATA_KEY.match(key):
            raise InvalidInput(
                "metadata filter keys are 1–64 characters of A-Z a-z 0-9 _ -", code="invalid_filter", field=f"metadata[{key}]"
            )
    after = None
    if cursor:
        pinned, updated_at, session_id = decode_cursor(cursor, 3)
        try:
            after = (bool(pinned), datetime.fromisoformat(updated_at), str(session_id))
        except (TypeError, ValueError) as exc:
            raise InvalidInput("cursor is not valid", code="invalid_cursor", field="cursor") from exc
        if after[1].tzinfo is None:
            raise InvalidInput("cursor is not valid", code="invalid_cursor", field="cursor")
    rows = await repository.list_sessions(
        db, principal.owner_id, filters, limit=limit + 1, offset=offset, after=after
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        last = rows[-1]
        next_cursor = encode_cursor([last.pinned, last.updated_at.isoformat(), last.id])
    return Page[ChatSession](data=[to_session(r) for r in rows], has_more=has_more, next_cursor=next_cursor)


async def update(
    db: AsyncSession, principal: Principal, session_id: str, data: SessionUpdate, settings: Settings
) -> ChatSession:
    row = await get_row(db, principal, session_id, Access.WRITE)
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    if "title" in changes:
        changes["title"] = _check_title(changes["title"], settings)
    if "metadata" in changes:
        changes["metadata_"] = _check_metadata(changes.pop("metadata"), settings)
    if "system_prompt" in changes:
        _check_system_prompt(changes["system_prompt"], settings)
    if changes:
        changes["updated_at"] = utcnow()
        await repository.update_session(db, session_id, changes)
        for name, value in changes.items():
            setattr(row, name, value)
    return to_session(row)


async def delete(db: AsyncSession, principal: Principal, session_id: str, *, hard: bool) -> None:
    """Soft delete hides the session everywhere (restorable); hard delete removes it for good."""
    row = await get_row(db, principal, session_id, Access.WRITE, include_deleted=hard)
    if hard:
        await repository.delete_session(db, session_id)
        # A session is also a LangGraph thread: its checkpoints go in the same transaction.
        await checkpoint_service.forget_thread(db, session_id)
    elif row.deleted_at is None:
        await repository.update_session(db, session_id, {"deleted_at": utcnow()})


async def restore(db: AsyncSession, principal: Principal, session_id: str) -> ChatSession:
    row = await get_row(db, principal, session_id, Access.WRITE, include_deleted=True)
    if row.deleted_at is not None:
        row.deleted_at = None
        await repository.update_session(db, session_id, {"deleted_at": None})
    return to_session(row)


# --- messages -------------------------------------------------------------------------------


def to_message(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        session_id=row.session_id,
        seq=row.seq,
        role=row.role,  # type: ignore[arg-type]
        content=row.content if row.content_parts is None else row.content_parts,
        name=row.name,
        tool_calls=row.tool_calls,
        tool_call_id=row.tool_call_id,
        parent_id=row.parent_id,
        metadata=row.metadata_,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        response_time_ms=row.response_time_ms,
        created_at=row.created_at,
    )


def _check_message_sizes(messages: list[MessageIn], settings: Settings) -> None:
    if len(messages) > settings.max_messages_per_request:
        raise PayloadTooLarge(
            f"at most {settings.max_messages_per_request} messages per request",
            code="too_many_messages",
            field="messages",
        )
    for index, message in enumerate(messages):
        content = message.content
        field = f"messages[{index}].content"
        if isinstance(content, list):
            size = _json_size([part.model_dump() for part in content], field)
        else:
            size = len((content or "").encode())
        if message.tool_calls:
            size += _json_size(message.tool_calls, f"messages[{index}].tool_calls")
        if size > settings.max_message_bytes:
            raise PayloadTooLarge(
                f"message content is larger than {settings.max_message_bytes} bytes",
                code="content_too_large",
                field=field,
            )
        _check_metadata(message.metadata, settings, field=f"messages[{index}].metadata")


async def append(
    db: AsyncSession,
    principal: Principal,
    session_id: str,
    body: MessageIn | MessageBatch,
    settings: Settings,
    *,
    idempotency_key: str | None = None,
) -> Message | MessageList:
    """Store new messages at the end of a session, with gap-free seqs, in one transaction."""
    batch = isinstance(body, MessageBatch)
    messages = body.messages if batch else [body]
    _check_message_sizes(messages, settings)
    if idempotency_key is not None:
        # Access first (and the row lock, so duplicates queue): another user's session is a 404
        # whatever their key says. Without a key, the append's own UPDATE checks access.
        await get_row(db, principal, session_id, Access.WRITE, lock=True)
        key_fingerprint = idempotency.fingerprint("append", session_id, body.model_dump(mode="json"))
        stored = await idempotency.claim(db, principal.owner_id, idempotency_key, key_fingerprint)
        if stored is not None:
            return MessageList.model_validate(stored) if batch else Message.model_validate(stored)
    appended = await append_messages(db, principal.owner_id, session_id, messages)
    result: Message | MessageList = MessageList(data=appended) if batch else appended[0]
    if idempotency_key is not None:
        await idempotency.record(db, principal.owner_id, idempotency_key, 201, result.model_dump(mode="json"))
    return result


async def append_messages(
    db: AsyncSession,
    owner_id: str,
    session_id: str,
    messages: list[MessageIn],
    *,
    ids: list[str] | None = None,
    kind: str | None = None,
) -> list[Message]:
    """Append to the owner's session (the gateway and runs use this too): two statements, one
    that takes the seqs and checks ownership, one that inserts. 404 if the session is not theirs.

    `ids` lets a caller announce message ids before storing (streams); `kind` overrides the
    kind derived from the role (e.g. "summary").
    """
    for index, message in enumerate(messages):
        if message.parent_id is not None and not await repository.message_in_session(db, session_id, message.parent_id):
            raise InvalidInput(
                "parent_id is not a message of this session", code="invalid_parent", field=f"messages[{index}].parent_id"
            )
    advanced = await repository.advance_session(db, session_id, owner_id, len(messages), **_advance_by(messages))
    if advanced is None:
        raise NotFound("session not found", code="session_not_found")
    last_seq, stamp = advanced
    rows = message_rows(session_id, messages, last_seq, stamp, ids=ids, kind=kind)
    rows[0]["parent_id"] = (await repository.insert_messages(db, rows))[0]
    return [
        Message(**{**row, "content": row["content"] if row["content_parts"] is None else row["content_parts"]})
        for row in rows
    ]


def _advance_by(messages: list[MessageIn]) -> dict[str, Any]:
    """How appending `messages` changes the session: counters, and the title if it has none."""
    first_user = next((m for m in messages if m.role == "user"), None)
    return {
        "now": utcnow(),
        "prompt_tokens": sum(m.prompt_tokens or 0 for m in messages),
        "completion_tokens": sum(m.completion_tokens or 0 for m in messages),
        "cost": sum(m.cost or 0.0 for m in messages),
        "title_if_unset": title_from_text(content_text(first_user.content)) if first_user else None,
    }


def message_rows(
    session_id: str,
    messages: list[MessageIn],
    last_seq: int,
    stamp: datetime,
    *,
    ids: list[str] | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """The rows (keyed by column name) of messages that take the seqs up to `last_seq`."""
    first_seq = last_seq - len(messages) + 1
    rows: list[dict[str, Any]] = []
    for offset, message in enumerate(messages):
        content = message.content
        rows.append(
            {
                "id": ids[offset] if ids else new_id(),
                "session_id": session_id,
                "seq": first_seq + offset,
                "role": message.role,
                "kind": kind or ("tool" if message.is_tool_traffic else "chat"),
                "content": content if isinstance(content, str) else None,
                "content_parts": [p.model_dump() for p in content] if isinstance(content, list) else None,
                "name": message.name,
                "tool_calls": message.tool_calls,
                "tool_call_id": message.tool_call_id,
                # Each message follows the one before it (the first: the session's previous one).
                "parent_id": message.parent_id or (rows[-1]["id"] if rows else None),
                "metadata": message.metadata,
                "model": message.model,
                "prompt_tokens": message.prompt_tokens,
                "completion_tokens": message.completion_tokens,
                "cost": message.cost,
                "response_time_ms": message.response_time_ms,
                "created_at": stamp,
            }
        )
    return rows


async def list_messages(
    db: AsyncSession, principal: Principal, session_id: str, query: MessageQuery, cursor: str | None = None
) -> Page[Message]:
    await get_row(db, principal, session_id)
    if cursor:
        seq = int(cursor) if cursor.isdigit() and len(cursor) <= 10 else -1
        if not 0 <= seq <= MAX_SEQ:
            raise InvalidInput("cursor is not valid", code="invalid_cursor", field="cursor")
        query = query.model_copy(update={"after" if query.order == "asc" else "before": seq})
    rows = await repository.list_messages(db, session_id, query.model_copy(update={"limit": query.limit + 1}))
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    return Page[Message](
        data=[to_message(r) for r in rows],
        has_more=has_more,
        next_cursor=str(rows[-1].seq) if has_more else None,
    )


async def get_message(db: AsyncSession, principal: Principal, session_id: str, message_id: str) -> Message:
    await get_row(db, principal, session_id)
    row = await repository.get_message(db, session_id, message_id)
    if row is None:
        raise NotFound("message not found", code="message_not_found")
    return to_message(row)


# --- copies and read-only views (used by chatkeep.sharing, which checks access) ----------------


async def live_row(db: AsyncSession, session_id: str) -> ChatSessionRow | None:
    """A session that is not in the trash, whoever owns it, unchecked."""
    row = await repository.get_session(db, session_id)
    return None if row is None or row.deleted_at is not None else row


async def message_in(db: AsyncSession, session_id: str, message_id: str) -> MessageRow | None:
    """A message of the session (any kind), unchecked."""
    return await repository.get_message(db, session_id, message_id)


async def last_message(db: AsyncSession, session_id: str) -> MessageRow | None:
    """The session's last chat or tool message, unchecked."""
    rows = await repository.last_messages(db, session_id, 1)
    return rows[0] if rows else None


async def last_reply(db: AsyncSession, session_id: str, max_seq: int | None = None) -> MessageRow | None:
    """The last completed assistant reply (not a tool call) at or before `max_seq`, unchecked."""
    return await repository.last_assistant_reply(db, session_id, max_seq)


async def list_messages_upto(
    db: AsyncSession, session_id: str, until_seq: int, query: MessageQuery, cursor: str | None = None
) -> Page[Message]:
    """`list_messages` of messages with seq <= until_seq, unchecked (the caller checked access)."""
    if cursor:
        seq = int(cursor) if cursor.isdigit() and len(cursor) <= 10 else -1
        if not 0 <= seq <= MAX_SEQ:
            raise InvalidInput("cursor is not valid", code="invalid_cursor", field="cursor")
        query = query.model_copy(update={"after" if query.order == "asc" else "before": seq})
    bound = until_seq + 1 if query.before is None else min(query.before, until_seq + 1)
    query = query.model_copy(update={"before": bound, "limit": query.limit + 1})
    rows = await repository.list_messages(db, session_id, query)
    limit = query.limit - 1
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page[Message](
        data=[to_message(r) for r in rows], has_more=has_more, next_cursor=str(rows[-1].seq) if has_more else None
    )


async def create_fork(
    db: AsyncSession,
    principal: Principal,
    source: ChatSessionRow,
    until_seq: int,
    *,
    title: str | None,
    forked_from: dict[str, str],
    other_user: bool,
    settings: Settings,
) -> ChatSession:
    """A new session of the caller's: a copy of `source`'s settings and its chat and tool messages
    up to `until_seq` (new ids; usage is not copied: the fork did not spend it). Unchecked: the
    caller decided the principal may copy this much. Another user's fork gets no metadata."""
    title = _check_title(title, settings) if title is not None else f"{source.title or 'Untitled'} (fork)"[: settings.max_title_chars]
    values = {key: getattr(source, key) for key in (
        "model", "temperature", "max_tokens", "system_prompt", "max_history_messages", "summarization"
    )}
    row = ChatSessionRow(**new_session_values(
        new_id(), principal.owner_id, source.agent, title, {} if other_user else dict(source.metadata_), values
    ))
    row.forked_from = forked_from
    row.forked_from_other_user = other_user
    await repository.insert_session(db, row)
    originals = await repository.messages_upto(db, source.id, until_seq)
    if originals:
        copies = [
            MessageIn.model_construct(
                role=m.role,
                content=m.content if m.content_parts is None else m.content_parts,
                name=m.name,
                tool_calls=m.tool_calls,
                tool_call_id=m.tool_call_id,
                parent_id=None,
                metadata=dict(m.metadata_ or {}) if not other_user else {},
                model=m.model,
                prompt_tokens=None,
                completion_tokens=None,
                cost=None,
                response_time_ms=None,
            )
            for m in originals
        ]
        await _append_copies(db, principal.owner_id, row.id, copies, [m.kind for m in originals])
    await db.refresh(row)
    return to_session(row)


async def _append_copies(
    db: AsyncSession, owner_id: str, session_id: str, messages: list[MessageIn], kinds: list[str]
) -> None:
    advanced = await repository.advance_session(db, session_id, owner_id, len(messages), **_advance_by(messages))
    if advanced is None:
        raise NotFound("session not found", code="session_not_found")
    last_seq, stamp = advanced
    rows = message_rows(session_id, messages, last_seq, stamp)
    for row, kind in zip(rows, kinds, strict=True):
        row["kind"] = kind
    await repository.insert_messages(db, rows)


# --- what the model sees (used by the gateway) ----------------------------------------------


async def history_for_model(db: AsyncSession, session: ChatSessionRow, limit: int) -> list[MessageRow]:
    """The last `limit` messages a model may see (chat and tool traffic), oldest first."""
    return await repository.last_messages(db, session.id, limit) if limit > 0 else []


async def current_summary(db: AsyncSession, session: ChatSessionRow) -> MessageRow | None:
    if session.summary_message_id is None:
        return None
    return await repository.get_message_by_id(db, session.summary_message_id)


async def messages_between(
    db: AsyncSession, session_id: str, after_seq: int, before_seq: int, limit: int
) -> list[MessageRow]:
    return await repository.messages_between(db, session_id, after_seq, before_seq, limit)


async def store_summary(db: AsyncSession, owner_id: str, session_id: str, summary: MessageIn) -> Message:
    """Store a summary (hidden from message lists) and make it the session's current one."""
    (stored,) = await append_messages(db, owner_id, session_id, [summary], kind="summary")
    await repository.update_session(db, session_id, {"summary_message_id": stored.id})
    return stored


# --- sessions that are LangGraph threads (chatkeep.checkpoint, on a sync Connection) ------------
# The saver runs inside the checkpoint's own transaction, on a sync Connection (its async twin
# reaches it through AsyncConnection.run_sync), so these take a Connection and check nothing:
# the saver is trusted code with its own database credentials.


def create_thread_session(
    conn: Connection,
    session_id: str,
    owner_id: str,
    settings: Settings,
    *,
    agent: str,
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
    **chosen: Any,
) -> bool:
    """Create the session of a new thread unless it exists; True if created. `chosen` may set
    model, temperature, max_tokens, system_prompt, max_history_messages, summarization."""
    values = {**server_defaults(settings), **{k: v for k, v in chosen.items() if v is not None}}
    row = new_session_values(session_id, owner_id, agent, title, metadata or {}, values)
    row["metadata"] = row.pop("metadata_")
    return repository.insert_session_if_absent(conn, row)


def thread_session_owner(conn: Connection, session_id: str) -> tuple[str, bool] | None:
    """(owner id, in the trash) of a session, or None when there is no such session."""
    found = repository.session_owner(conn, session_id)
    return None if found is None else (found[0], found[1] is not None)


def thread_session_settings(conn: Connection, session_id: str) -> dict[str, Any] | None:
    """What a copy of the session starts with: owner, agent, title, model settings, metadata."""
    row = repository.session_row(conn, session_id)
    if row is None:
        return None
    keep = ("owner_id", "agent", "title", "model", "temperature", "max_tokens", "system_prompt",
            "max_history_messages", "summarization", "metadata")
    return {key: row[key] for key in keep}


def append_thread_messages(
    conn: Connection, owner_id: str, session_id: str, messages: list[MessageIn], ids: list[str]
) -> bool:
    """`append_messages` for the saver's mirror of a thread's messages (validated by the caller);
    False when the owner's session is not live (gone, or in the trash)."""
    advanced = repository.advance_session_sync(conn, session_id, owner_id, len(messages), **_advance_by(messages))
    if advanced is None:
        return False
    last_seq, stamp = advanced
    rows = message_rows(session_id, messages, last_seq, stamp, ids=ids)
    repository.insert_messages_sync(conn, rows)
    return True


def delete_thread_session(conn: Connection, session_id: str) -> None:
    """Hard-delete a thread's session and its messages (the saver's delete_thread)."""
    repository.delete_session_sync(conn, session_id)


# --- runs (used by the runs package) --------------------------------------------------------


async def set_active_run(db: AsyncSession, session_id: str, run_id: str) -> None:
    await repository.update_session(db, session_id, {"active_run_id": run_id})


async def clear_active_run(db: AsyncSession, session_id: str, run_id: str) -> None:
    """Forget the session's active run, if it is still this one."""
    await repository.clear_active_run(db, session_id, run_id)


# --- owners (used by auth.visitors, which checks the claim) ---------------------------------


async def give_sessions(db: AsyncSession, from_owner: str, to_owner: str) -> int:
    """Move every session of one owner to another (a visitor's to the user who claimed it)."""
    return await repository.change_owner(db, from_owner, to_owner)


# --- maintenance ----------------------------------------------------------------------------


async def purge_visitor_sessions(db: AsyncSession, *, older_than: datetime, batch: int) -> int:
    """Hard-delete up to `batch` sessions that anonymous visitors left unclaimed and untouched
    since `older_than` (claimed sessions belong to users and are never touched). Unchecked:
    a maintenance task, not a request."""
    ids = await repository.stale_sessions_of_owners(db, VISITOR_PREFIX, older_than, batch)
    for session_id in ids:
        await repository.delete_session(db, session_id)
        await checkpoint_service.forget_thread(db, session_id)
    return len(ids)
