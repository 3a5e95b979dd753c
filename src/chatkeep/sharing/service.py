"""Share links and forks: use cases and every access check on them.

A share is a token (>= 192 random bits) that names a session up to a boundary: the last completed
assistant reply at or before a chosen message. Anyone with the token reads the title and the
messages up to the boundary, nothing else; any authenticated user may fork that much.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth.principal import Principal
from chatkeep.config import Settings
from chatkeep.db.base import utcnow
from chatkeep.db.tables import ChatSessionRow, MessageRow, ShareRow
from chatkeep.errors import InvalidInput, NotFound
from chatkeep.ids import new_token
from chatkeep.pagination import Page
from chatkeep.sessions import service as sessions
from chatkeep.sessions.schemas import ChatSession, Message, MessageQuery
from chatkeep.sharing import repository
from chatkeep.sharing.schemas import ForkCreate, Share, SharedForkCreate, SharedMessage, SharedSession

SHARE_PREFIX = "shr_"


def share_path(share_id: str) -> str:
    return f"/v1/shared/{share_id}"


def _to_share(row: ShareRow, base_url: str) -> Share:
    return Share(
        share_id=row.id, url=base_url.rstrip("/") + share_path(row.id), until_message_id=row.until_message_id, created_at=row.created_at
    )


def public_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata minus what its author marked private: the key `private` and keys starting with `_`."""
    return {k: v for k, v in (metadata or {}).items() if k != "private" and not k.startswith("_")}


def _to_shared_message(message: Message) -> SharedMessage:
    return SharedMessage(
        id=message.id,
        seq=message.seq,
        role=message.role,
        content=message.content,
        name=message.name,
        tool_calls=message.tool_calls,
        tool_call_id=message.tool_call_id,
        metadata=public_metadata(message.metadata),
        created_at=message.created_at,
    )


async def _boundary(db: AsyncSession, session: ChatSessionRow, until_message_id: str | None) -> MessageRow:
    """The last completed assistant reply at or before the given message (default: the latest)."""
    max_seq = None
    if until_message_id is not None:
        message = await sessions.message_in(db, session.id, until_message_id)
        if message is None or message.kind == "summary":
            raise NotFound("message not found in this session", code="message_not_found")
        max_seq = message.seq
    reply = await sessions.last_reply(db, session.id, max_seq)
    if reply is None:
        where = "at or before that message" if until_message_id else "in this session"
        raise InvalidInput(
            f"there is no completed assistant reply {where} to share up to",
            code="no_reply_to_share",
            field="until_message_id",
        )
    return reply


# --- share links (owner) ------------------------------------------------------------------------


async def share(db: AsyncSession, principal: Principal, session_id: str, until_message_id: str | None, *, base_url: str) -> Share:
    """Create the session's share link, or move its boundary (the link stays the same)."""
    session = await sessions.get_row(db, principal, session_id, sessions.Access.WRITE, lock=True)
    reply = await _boundary(db, session, until_message_id)
    row = await repository.get_by_session(db, session.id)
    now = utcnow()
    if row is None:
        row = await repository.insert(
            db,
            ShareRow(
                id=SHARE_PREFIX + new_token(24),
                session_id=session.id,
                until_message_id=reply.id,
                until_seq=reply.seq,
                created_at=now,
                updated_at=now,
            ),
        )
    else:
        row.until_message_id, row.until_seq, row.updated_at = reply.id, reply.seq, now
        await db.flush()
    return _to_share(row, base_url)


async def get_share(db: AsyncSession, principal: Principal, session_id: str, *, base_url: str) -> Share:
    session = await sessions.get_row(db, principal, session_id)
    row = await repository.get_by_session(db, session.id)
    if row is None:
        raise NotFound("this session is not shared", code="share_not_found")
    return _to_share(row, base_url)


async def revoke(db: AsyncSession, principal: Principal, session_id: str) -> None:
    session = await sessions.get_row(db, principal, session_id, sessions.Access.WRITE)
    if not await repository.delete_for_session(db, session.id):
        raise NotFound("this session is not shared", code="share_not_found")


# --- shared views (anyone with the link) --------------------------------------------------------


async def _resolve(db: AsyncSession, share_id: str) -> tuple[ShareRow, ChatSessionRow]:
    row = await repository.get(db, share_id) if share_id.startswith(SHARE_PREFIX) else None
    session = await sessions.live_row(db, row.session_id) if row is not None else None
    if row is None or session is None:
        raise NotFound("shared conversation not found", code="share_not_found")
    return row, session


async def get_shared(db: AsyncSession, share_id: str) -> SharedSession:
    row, session = await _resolve(db, share_id)
    return SharedSession(
        share_id=row.id,
        title=session.title,
        until_message_id=row.until_message_id,
        message_count=await repository.count_upto(db, session.id, row.until_seq),
        created_at=row.created_at,
    )


async def list_shared_messages(
    db: AsyncSession, share_id: str, query: MessageQuery, cursor: str | None = None
) -> Page[SharedMessage]:
    row, session = await _resolve(db, share_id)
    page = await sessions.list_messages_upto(db, session.id, row.until_seq, query, cursor)
    return Page[SharedMessage](
        data=[_to_shared_message(m) for m in page.data], has_more=page.has_more, next_cursor=page.next_cursor
    )


# --- forks --------------------------------------------------------------------------------------


async def fork(db: AsyncSession, principal: Principal, session_id: str, body: ForkCreate, settings: Settings) -> ChatSession:
    """The owner's copy of their session, up to a message (default: all of it)."""
    source = await sessions.get_row(db, principal, session_id)
    if body.until_message_id is not None:
        message = await sessions.message_in(db, source.id, body.until_message_id)
        if message is None or message.kind == "summary":
            raise NotFound("message not found in this session", code="message_not_found")
        until_seq, until_id = message.seq, message.id
    else:
        until_seq = source.message_count
        last = await sessions.last_message(db, source.id)
        until_id = last.id if last is not None else None
    forked_from = {"session_id": source.id, **({"message_id": until_id} if until_id else {})}
    return await sessions.create_fork(
        db, principal, source, until_seq, title=body.title, forked_from=forked_from, other_user=False, settings=settings
    )


async def fork_shared(
    db: AsyncSession, principal: Principal, share_id: str, body: SharedForkCreate, settings: Settings
) -> ChatSession:
    """Any authenticated user's copy of a shared conversation, up to the share's boundary only."""
    row, source = await _resolve(db, share_id)
    other_user = source.owner_id != principal.owner_id
    return await sessions.create_fork(
        db,
        principal,
        source,
        row.until_seq,
        title=body.title,
        forked_from={"share_id": row.id, "message_id": row.until_message_id},
        other_user=other_user,
        settings=settings,
    )
