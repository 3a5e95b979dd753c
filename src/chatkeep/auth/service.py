"""Use cases for users and API keys, and turning a bearer token into a Principal."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep.auth import repository
from chatkeep.auth.principal import Principal
from chatkeep.auth.schemas import ApiKey, User, UserCreate, UserWithKey
from chatkeep.db.base import utcnow
from chatkeep.db.tables import ApiKeyRow, UserRow
from chatkeep.errors import Conflict, Forbidden, NotFound, Unauthorized
from chatkeep.ids import new_id, new_token
from chatkeep.pagination import Page, decode_cursor, encode_cursor

KEY_PREFIX = "ck_"
# last_used_at is refreshed at most this often per key, so reads stay reads.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


async def create_user(db: AsyncSession, data: UserCreate) -> UserWithKey:
    if await repository.get_user_by_name(db, data.name) is not None:
        raise Conflict(f"a user named {data.name!r} already exists", code="user_exists")
    row = await repository.insert_user(
        db,
        UserRow(id=new_id(), name=data.name, email=data.email, preferences={}, created_at=utcnow()),
    )
    key_row, api_key = await _issue_key(db, row.id, name="default")
    return UserWithKey(user=User.model_validate(row), api_key=api_key, api_key_id=key_row.id)


async def get_user(db: AsyncSession, user_id: str) -> User:
    row = await repository.get_user(db, user_id)
    if row is None:
        raise NotFound("user not found", code="user_not_found")
    return User.model_validate(row)


async def find_user(db: AsyncSession, ref: str) -> User:
    """A user by id or by name (the CLI accepts either)."""
    row = await repository.get_user(db, ref) or await repository.get_user_by_name(db, ref)
    if row is None:
        raise NotFound(f"no user with id or name {ref!r}", code="user_not_found")
    return User.model_validate(row)


async def count_users(db: AsyncSession) -> int:
    return await repository.count_users(db)


async def list_users(
    db: AsyncSession, *, limit: int, offset: int = 0, cursor: str | None = None
) -> Page[User]:
    after_id = decode_cursor(cursor, 1)[0] if cursor else None
    rows = await repository.list_users(db, limit=limit + 1, offset=offset, after_id=after_id)
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page[User](
        data=[User.model_validate(r) for r in rows],
        has_more=has_more,
        next_cursor=encode_cursor([rows[-1].id]) if has_more else None,
    )


async def create_key(db: AsyncSession, user_ref: str, name: str | None = None) -> tuple[ApiKey, str]:
    user = await find_user(db, user_ref)
    row, api_key = await _issue_key(db, user.id, name=name)
    return ApiKey.model_validate(row), api_key


async def list_keys(db: AsyncSession, user_ref: str) -> list[ApiKey]:
    user = await find_user(db, user_ref)
    return [ApiKey.model_validate(r) for r in await repository.list_keys(db, user.id)]


async def revoke_key(db: AsyncSession, key_id: str) -> ApiKey:
    row = await repository.get_key(db, key_id)
    if row is None:
        raise NotFound("API key not found", code="api_key_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await repository.revoke_key(db, key_id, row.revoked_at)
    return ApiKey.model_validate(row)


async def _issue_key(db: AsyncSession, user_id: str, *, name: str | None) -> tuple[ApiKeyRow, str]:
    api_key = KEY_PREFIX + new_token(32)
    row = await repository.insert_key(
        db,
        ApiKeyRow(
            id=new_id(),
            user_id=user_id,
            name=name,
            prefix=api_key[:10],
            key_hash=hash_key(api_key),
            created_at=utcnow(),
        ),
    )
    return row, api_key


async def authenticate(
    db: AsyncSession, token: str | None, *, admin_key: str | None
) -> tuple[Principal, bool]:
    """The Principal a bearer token stands for, and whether its last_used_at is due a refresh.

    Keys are looked up by their SHA-256 and then compared in constant time, so response timing
    tells an attacker nothing about how close a guess was.
    """
    if not token:
        raise Unauthorized("missing bearer credentials", code="missing_credentials")
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Principal(kind="admin", id="admin"), False
    digest = hash_key(token)
    row = await repository.find_active_key(db, digest) if token.startswith(KEY_PREFIX) else None
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
    stale = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_GRANULARITY
    return Principal(kind="user", id=row.user_id, api_key_id=row.id), stale


async def touch_key(db: AsyncSession, key_id: str) -> None:
    await repository.set_key_last_used(db, key_id, utcnow())


async def principal_for_key_id(db: AsyncSession, key_id: str | None) -> Principal | None:
    """The user of a (signed) browser session cookie's API key, unless the key was revoked."""
    row = await repository.get_key(db, key_id) if key_id else None
    if row is None or row.revoked_at is not None:
        return None
    return Principal(kind="user", id=row.user_id, api_key_id=row.id)


def subject_key(claims: dict) -> str:
    return f"{claims.get('iss') or ''}|{claims['sub']}"[:512]


async def user_for_subject(db: AsyncSession, claims: dict) -> str | None:
    """The id of the user an identity provider's `sub` maps to, if there is one yet."""
    row = await repository.get_user_by_subject(db, subject_key(claims))
    return row.id if row else None


async def create_subject_user(db: AsyncSession, claims: dict) -> str:
    """Create the user of a `sub` seen for the first time (named after preferred_username/email/sub)."""
    subject = subject_key(claims)
    base = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])[:150].strip() or "user"
    name = base
    if await repository.get_user_by_name(db, name) is not None:
        name = f"{base}-{hashlib.sha256(subject.encode()).hexdigest()[:12]}"
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    row = UserRow(id=new_id(), name=name, email=email, preferences={}, created_at=utcnow())
    row.external_subject = subject
    await repository.insert_user(db, row)
    return row.id


def require_user(principal: Principal) -> Principal:
    """User endpoints belong to users (and later visitors); the admin key owns no sessions."""
    if principal.kind == "admin":
        raise Forbidden("the admin key cannot act as a user; use a user's API key", code="user_required")
    return principal


def require_admin(principal: Principal) -> Principal:
    if principal.kind != "admin":
        raise Forbidden("this endpoint needs the admin key", code="admin_required")
    return principal
