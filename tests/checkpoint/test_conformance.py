"""LangGraph's own conformance suite (langgraph-checkpoint-conformance), every capability, on
SQLite and PostgreSQL, for the async saver and for the sync saver (through SyncAsAsync).

Two ways: `validate` on one database that every capability's suite shares (data piles up, as
in real use), and each single conformance test on a brand-new empty database, opened with
`from_conn_string` (which must make the tables itself: LangGraph's AsyncSqliteSaver fails
`adelete_thread` when that is the first call on a new database).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.spec import (
    test_copy_thread,
    test_delete_for_runs,
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_prune,
    test_put,
    test_put_writes,
)

from chatkeep.checkpoint import AsyncChatkeepSaver, ChatkeepSaver
from tests.checkpoint.conftest import OWNER, SyncAsAsync

SPECS = {
    "put": test_put.ALL_PUT_TESTS,
    "put_writes": test_put_writes.ALL_PUT_WRITES_TESTS,
    "get_tuple": test_get_tuple.ALL_GET_TUPLE_TESTS,
    "list": test_list.ALL_LIST_TESTS,
    "delete_thread": test_delete_thread.ALL_DELETE_THREAD_TESTS,
    "delete_for_runs": test_delete_for_runs.ALL_DELETE_FOR_RUNS_TESTS,
    "copy_thread": test_copy_thread.ALL_COPY_THREAD_TESTS,
    "prune": test_prune.ALL_PRUNE_TESTS,
}


def open_saver(mode: str, url: str):
    """An async context manager yielding the saver of `mode` on `url` (asyncio API)."""
    if mode == "async":
        return AsyncChatkeepSaver.from_conn_string(url, user_id=OWNER)

    class _Sync:
        async def __aenter__(self):
            self.cm = ChatkeepSaver.from_conn_string(url, user_id=OWNER)
            return SyncAsAsync(self.cm.__enter__())

        async def __aexit__(self, *exc):
            self.cm.__exit__(*exc)

    return _Sync()


def test_every_capability_has_its_suite():
    assert set(SPECS) == {c.value for c in ALL_CAPABILITIES}


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_conformance_suite_passes_all(mode, new_database):
    """validate() makes a saver per capability: each gets a brand-new empty database."""

    @checkpointer_test(name=f"chatkeep-{mode}")
    async def factory() -> AsyncIterator:
        async with open_saver(mode, new_database()) as saver:
            yield saver

    report = await validate(factory)
    if not report.passed_all():
        report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all(), failures
    # Every capability was detected and ran (passed_all alone ignores undetected ones).
    assert {name for name, r in report.results.items() if r.detected and r.passed} == set(SPECS)


# The conformance tests whose first call is not a put: on a brand-new database they are the
# first thing the saver ever does there.
FIRST_CALL_TESTS = {
    "test_get_tuple_nonexistent_returns_none",
    "test_list_by_thread",
    "test_list_empty_result",
    "test_delete_thread_nonexistent_noop",
    "test_delete_for_runs_empty_list_noop",
    "test_delete_for_runs_nonexistent_noop",
    "test_copy_thread_nonexistent_source",
    "test_prune_empty_list_noop",
    "test_prune_nonexistent_noop",
}


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_conformance_tests_alone_on_a_brand_new_database(mode, new_database):
    specs = [spec for specs in SPECS.values() for spec in specs if spec.__name__ in FIRST_CALL_TESTS]
    assert {spec.__name__ for spec in specs} == FIRST_CALL_TESTS
    failures = []
    for spec in specs:
        async with open_saver(mode, new_database()) as saver:
            try:
                await spec(saver)
            except Exception as exc:  # noqa: BLE001  (collect them all, report together)
                failures.append(f"{spec.__name__}: {exc!r}")
    assert not failures, failures
