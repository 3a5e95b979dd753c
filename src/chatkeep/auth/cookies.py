"""Signed cookie values (HMAC-SHA256 over purpose + value + time, standard library only) and
the server's secret key.

A value is `<payload>.<issued-at>.<signature>` (url-safe base64 without padding). The purpose is
part of what is signed, so a visitor cookie is never accepted as a session cookie or vice versa.
A value whose signature does not match, or that is older than its max age, is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from chatkeep.config import Settings

VISITOR_COOKIE = "chatkeep_visitor"
SESSION_COOKIE = "chatkeep_session"
SECRET_FILE = "secret_key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, payload: str, issued: str) -> str:
    message = f"{purpose}\n{payload}\n{issued}".encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def sign(key: bytes, purpose: str, value: str, *, now: float | None = None) -> str:
    payload = _b64(value.encode())
    issued = str(int(now if now is not None else time.time()))
    return f"{payload}.{issued}.{_mac(key, purpose, payload, issued)}"


def unsign(key: bytes, purpose: str, signed: str | None, *, max_age: float) -> str | None:
    """The signed value, or None when it is missing, tampered with, or too old."""
    if not signed or len(signed) > 4096:
        return None
    parts = signed.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    payload, issued, mac = parts
    if not hmac.compare_digest(mac.encode(), _mac(key, purpose, payload, issued).encode()):
        return None
    if time.time() - int(issued) > max_age:
        return None
    try:
        return _unb64(payload).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def data_dir(settings: Settings) -> Path:
    """Where the server keeps its files: next to the SQLite database, else ./data."""
    url = make_url(settings.database_url.replace("postgres://", "postgresql://", 1))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent
    return Path("data").resolve()


def secret_key(settings: Settings) -> bytes:
    """CHATKEEP_SECRET_KEY, else a key generated once and kept (mode 0600) in the data dir.

    Every process of a deployment must share it: set CHATKEEP_SECRET_KEY when they do not share
    a data dir (e.g. PostgreSQL on several hosts)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = data_dir(settings) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            text = path.read_text().strip()
            if text:
                return text.encode()
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it or set CHATKEEP_SECRET_KEY") from None
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
