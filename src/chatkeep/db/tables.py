"""Every table of the store. Repositories are the only modules that query them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from chatkeep.db.base import Base, JSONType, UTCDateTime

ID = String(128)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    # "<issuer>|<sub>" of a user created from an external identity provider's JWT.
    external_subject: Mapped[str | None] = mapped_column(String(512), unique=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # First characters of the key, shown in listings so people can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the whole key: the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChatSessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # A user id or an anonymous visitor id (no foreign key: visitors are not users).
    owner_id: Mapped[str] = mapped_column(ID)
    title: Mapped[str | None] = mapped_column(String(400))
    agent: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(200))
    temperature: Mapped[float | None] = mapped_column(Float)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    max_history_messages: Mapped[int] = mapped_column(Integer)
    summarization: Mapped[bool] = mapped_column(Boolean)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Also the last seq handed out: messages are never removed one by one.
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cost: Mapped[float] = mapped_column(Float, default=0.0)
    # The latest summary message (kind "summary") of the conversation's older part, if any.
    summary_message_id: Mapped[str | None] = mapped_column(ID)
    # The run generating in this session right now, if any.
    active_run_id: Mapped[str | None] = mapped_column(ID)
    # A fork: {"session_id"|"share_id": …, "message_id": …} of what it was copied from.
    forked_from: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # A fork of another user's conversation: the gateway tells the model so.
    forked_from_other_user: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        # "My sessions, pinned first, newest first": one backward index scan per page.
        Index(
            "ix_sessions_owner_listing",
            "owner_id",
            "archived",
            "pinned",
            "updated_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index("ix_sessions_owner_deleted", "owner_id", "deleted_at"),
    )


class ShareRow(Base):
    """A read-only link to a session up to a boundary message (one per session)."""

    __tablename__ = "shares"

    # The unguessable token in the link; never the session id.
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), unique=True)
    until_message_id: Mapped[str] = mapped_column(ID)
    until_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitorClaimRow(Base):
    """An anonymous visitor whose sessions went to a user: claimed once, for good."""

    __tablename__ = "visitor_claims"

    visitor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    # "chat" (what people see), "tool" (tool calls and results), "summary" (hidden context).
    kind: Mapped[str] = mapped_column(String(16))
    # Plain-string content; list-of-parts content goes in content_parts instead.
    content: Mapped[str | None] = mapped_column(Text)
    content_parts: Mapped[list[Any] | None] = mapped_column(JSONType)
    name: Mapped[str | None] = mapped_column(String(200))
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSONType)
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ID)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    response_time_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The unique (session_id, seq) index also serves "last N messages of a session".
    __table_args__ = (UniqueConstraint("session_id", "seq"),)


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"

    owner_id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # What the key was used for (operation + target + body hash): a reuse for anything else is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    # Null while the first request holding the key is still in flight.
    response: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- LangGraph checkpoints (chatkeep.checkpoint). A thread IS a session: thread_id == session id.
# No foreign keys to sessions: a thread's writes may arrive before its first checkpoint (and so
# before its session); a hard delete of the session removes these rows explicitly.


class CheckpointRow(Base):
    """One LangGraph checkpoint, without its channel values (those live in checkpoint_blobs)."""

    __tablename__ = "checkpoints"

    thread_id: Mapped[str] = mapped_column(ID, primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(String, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String, primary_key=True)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(String)
    # metadata["run_id"], as a column so delete_for_runs is an index lookup.
    run_id: Mapped[str | None] = mapped_column(String, index=True)
    # The checkpoint (minus channel_values) as LangGraph's serde wrote it: (type, bytes).
    type: Mapped[str] = mapped_column(String)
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    # {channel: str(version)}: which blob holds each channel's value (readable by SQL and by
    # retention without the serde).
    versions: Mapped[dict[str, str]] = mapped_column(JSONType)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)


class CheckpointBlobRow(Base):
    """One version of one channel's value, stored once. A list that extends an earlier version
    is stored as its appended tail plus `base_version` (the version it extends)."""

    __tablename__ = "checkpoint_blobs"

    thread_id: Mapped[str] = mapped_column(ID, primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(String, primary_key=True)
    channel: Mapped[str] = mapped_column(String, primary_key=True)
    version: Mapped[str] = mapped_column(String, primary_key=True)
    type: Mapped[str] = mapped_column(String)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    base_version: Mapped[str | None] = mapped_column(String)
    # Links from this blob down to its full copy (0 = a full copy).
    depth: Mapped[int] = mapped_column(Integer, default=0)


class CheckpointWriteRow(Base):
    """A pending write of a task against a checkpoint (which may not be stored yet)."""

    __tablename__ = "checkpoint_writes"

    thread_id: Mapped[str] = mapped_column(ID, primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(String, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String, primary_key=True)
    task_id: Mapped[str] = mapped_column(String, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String)
    type: Mapped[str] = mapped_column(String)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    task_path: Mapped[str] = mapped_column(String, default="")


class CheckpointMessageRow(Base):
    """Which session message mirrors a LangChain message of the thread's `messages` channel
    (message_id null: seen but not mirrored, e.g. a system message)."""

    __tablename__ = "checkpoint_messages"

    thread_id: Mapped[str] = mapped_column(ID, primary_key=True)
    lc_id: Mapped[str] = mapped_column(String, primary_key=True)
    message_id: Mapped[str | None] = mapped_column(ID)


class CheckpointTombstoneRow(Base):
    """A deleted thread: late writes of a graph still running for it are dropped, not stored."""

    __tablename__ = "checkpoint_tombstones"

    thread_id: Mapped[str] = mapped_column(ID, primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # A checkpoint id (uuid6) taken at deletion: checkpoints older than it belong to the dead thread.
    watermark: Mapped[str] = mapped_column(String)


class RunRow(Base):
    """A background generation in a session; its events live in the broker."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ID)
    agent: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(200))
    # pending | running | completed | error | cancelled
    status: Mapped[str] = mapped_column(String(16))
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    # Tokens generated so far (for task-status estimates).
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Id of the run's last event recorded (the resume cursor).
    cursor: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    message_ids: Mapped[list[str]] = mapped_column(JSONType)
    # The process executing it; it renews lease_until while alive.
    worker: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_runs_session_created", "session_id", "created_at"),
        # The reaper's scan: live runs whose lease ran out.
        Index("ix_runs_status_lease", "status", "lease_until"),
    )
