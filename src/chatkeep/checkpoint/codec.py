"""Channel values to blob rows and back, with LangGraph's serde.

Storage cost: a channel version is stored once. A list channel (`messages`) whose new value
extends the version this process last saw is stored as just the appended tail plus a reference
to that base version; reading a version walks its chain back to a full copy. A full copy is
written when there is no usable base, and when the chain gets longer than half the list, so a
read never touches more than ~1.5x the list and the bytes written per turn stay flat.

"Extends" is decided by object identity: LangGraph's reducers (add_messages, operator.add)
build the new list from the very objects of the old one, so the check costs one pointer
comparison per element and no serialisation. State values must not be mutated in place (the
LangGraph rule: nodes return updates).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import WRITES_IDX_MAP, ChannelVersions, Checkpoint, PendingWrite, writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol

EMPTY = "empty"
# Chains up to this many links are always fine; beyond it, a full copy once a chain is longer
# than half the list.
MIN_CHAIN = 16


def chain_allows(depth: int, length: int) -> bool:
    return depth <= max(MIN_CHAIN, length // 2)


# Non-list values up to this many serialised bytes are remembered too (as bytes), so reading
# the checkpoint this process just wrote needs no blob from the database.
SMALL_VALUE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Known:
    """A channel's value at one version, as this process last saved or loaded it: a list as its
    items (tails are stored against it), any other small value as its serialised bytes
    (`typed`, deserialised afresh on every read, so callers never share a mutable value)."""

    version: str
    items: tuple[Any, ...]
    depth: int
    typed: tuple[str, bytes | None] | None = None


class ValueCache:
    """Recently seen list values per (thread, namespace, channel), least recently used out.

    Thread-safe. Only versions LangGraph generated through the saver (strings, unique per
    write) are kept, so a cached (channel, version) can never disagree with the database.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str, str], Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, thread_id: str, ns: str, channel: str) -> Known | None:
        with self._lock:
            known = self._entries.get((thread_id, ns, channel))
            if known is not None:
                self._entries.move_to_end((thread_id, ns, channel))
            return known

    def remember(self, thread_id: str, ns: str, channel: str, known: Known) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[(thread_id, ns, channel)] = known
            self._entries.move_to_end((thread_id, ns, channel))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, thread_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == thread_id]:
                del self._entries[key]


def cacheable(version: Any) -> bool:
    """Versions made by a get_next_version like the saver's ("<12 or more digits>.<random>"):
    unique per write, so a cached value of one can't disagree with the database's (first write
    wins there). Plain numbers ("3", 3) are not: callers may reuse them on another branch."""
    if not isinstance(version, str):
        return False
    number, dot, suffix = version.partition(".")
    return bool(dot) and bool(suffix) and len(number) >= 12 and number.isdigit()


@dataclass
class Delta:
    """A tail blob row (its depth: the base's as this process knows it, plus one), and how to
    make the full copy if its base turns out to be gone."""

    row: dict[str, Any]
    full: Callable[[], tuple[str, bytes]]


@dataclass
class PreparedBlobs:
    rows: list[dict[str, Any]] = field(default_factory=list)
    deltas: list[Delta] = field(default_factory=list)
    # What to remember once the transaction committed.
    known: list[tuple[str, Known]] = field(default_factory=list)
    # The channels whose value extends the known one, with the appended items.
    tails: dict[str, list[Any]] = field(default_factory=dict)


class Codec:
    """LangGraph's serde applied to checkpoints, blobs and writes."""

    def __init__(self, serde: SerializerProtocol, cache: ValueCache) -> None:
        self.serde = serde
        self.cache = cache

    # --- writing ---------------------------------------------------------------------------

    def checkpoint_row(
        self,
        thread_id: str,
        ns: str,
        checkpoint: Checkpoint,
        parent_id: str | None,
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        body = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        type_, blob = self.serde.dumps_typed(body)
        run_id = metadata.get("run_id")
        return {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": parent_id,
            "run_id": str(run_id) if run_id is not None else None,
            "type": type_,
            "checkpoint": blob,
            "versions": {channel: str(version) for channel, version in checkpoint["channel_versions"].items()},
            "metadata": metadata,
        }

    def blobs(
        self, thread_id: str, ns: str, values: Mapping[str, Any], new_versions: ChannelVersions
    ) -> PreparedBlobs:
        prepared = PreparedBlobs()
        for channel, version in new_versions.items():
            key = {"thread_id": thread_id, "checkpoint_ns": ns, "channel": channel, "version": str(version)}
            if channel not in values:
                prepared.rows.append({**key, "type": EMPTY, "blob": None, "base_version": None, "depth": 0})
                if cacheable(version):
                    prepared.known.append((channel, Known(str(version), (), 0, (EMPTY, None))))
                continue
            value = values[channel]
            known = self.cache.get(thread_id, ns, channel) if type(value) is list else None
            if known is not None and self._extends(value, known):
                tail = value[len(known.items):]
                type_, blob = self.serde.dumps_typed(tail)
                prepared.deltas.append(
                    Delta(
                        row={**key, "type": type_, "blob": blob, "base_version": known.version,
                             "depth": known.depth + 1},
                        full=lambda value=value: self.serde.dumps_typed(value),
                    )
                )
                prepared.tails[channel] = tail
                depth = known.depth + 1
            else:
                type_, blob = self.serde.dumps_typed(value)
                prepared.rows.append({**key, "type": type_, "blob": blob, "base_version": None, "depth": 0})
                depth = 0
                if type(value) is not list and cacheable(version) and len(blob or b"") <= SMALL_VALUE:
                    prepared.known.append((channel, Known(str(version), (), 0, (type_, blob))))
            if type(value) is list and cacheable(version):
                prepared.known.append((channel, Known(str(version), tuple(value), depth)))
        return prepared

    @staticmethod
    def _extends(value: list[Any], known: Known) -> bool:
        base = known.items
        if len(value) < len(base) or not chain_allows(known.depth + 1, len(value)):
            return False
        return all(new is old for new, old in zip(value, base))

    def write_rows(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: Iterable[tuple[str, Any]],
    ) -> list[dict[str, Any]]:
        rows = []
        for idx, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            rows.append(
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                    "task_id": task_id,
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "type": type_,
                    "blob": blob,
                    "task_path": task_path,
                }
            )
        return rows

    # --- reading ---------------------------------------------------------------------------

    def checkpoint(self, type_: str, blob: bytes, values: dict[str, Any]) -> Checkpoint:
        body = self.serde.loads_typed((type_, blob))
        return {**body, "channel_values": values}  # type: ignore[typeddict-item]

    def writes(self, rows: Iterable[Any]) -> list[PendingWrite]:
        ordered = sorted(rows, key=lambda r: writes_sort_key(r.task_path, r.task_id, r.idx))
        return [(r.task_id, r.channel, self.serde.loads_typed((r.type, r.blob or b""))) for r in ordered]

    def values(
        self,
        versions: Mapping[str, str],
        blobs: Mapping[tuple[str, str], Any],
        memo: dict[tuple[str, str], Any],
        known: Mapping[str, Known] | None = None,
    ) -> dict[str, Any]:
        """Channel values of one checkpoint from blob rows keyed by (channel, version); `memo`
        holds values already rebuilt (shared by the checkpoints of one list() call)."""
        values: dict[str, Any] = {}
        for channel, version in versions.items():
            hit = (known or {}).get(channel)
            if hit is not None and hit.version == version:
                if hit.typed is None:
                    values[channel] = list(hit.items)
                elif hit.typed[0] != EMPTY:
                    values[channel] = self.serde.loads_typed((hit.typed[0], hit.typed[1] or b""))
                continue
            if (channel, version) not in blobs and (channel, version) not in memo:
                continue
            value = self._rebuild(channel, version, blobs, memo)
            if value is not _ABSENT:
                values[channel] = list(value) if type(value) is list else value
        return values

    def _rebuild(self, channel: str, version: str, blobs: Mapping[tuple[str, str], Any], memo: dict) -> Any:
        chain = []
        key = (channel, version)
        while key not in memo:
            row = blobs.get(key)
            if row is None:  # a broken chain: the base was deleted under us
                raise LookupError(f"blob {channel}@{key[1]} is missing")
            chain.append(row)
            if row.base_version is None:
                break
            key = (channel, row.base_version)
        value = memo[key] if key in memo else _ABSENT
        for row in reversed(chain):
            if row.type == EMPTY:
                value = _ABSENT
            elif row.base_version is None:
                value = self.serde.loads_typed((row.type, row.blob or b""))
            else:
                value = [*value, *self.serde.loads_typed((row.type, row.blob or b""))]
            memo[(channel, row.version)] = value
        return value


_ABSENT = object()
