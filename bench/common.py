"""What every benchmark shares: the machine line, and choosing backends."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

import psycopg
from rich.console import Console


def machine_line(postgres_url: str | None, packages: tuple[str, ...] = ()) -> str:
    from importlib.metadata import version

    python = ".".join(map(str, sys.version_info[:3]))
    line = f"{len(os.sched_getaffinity(0))} cores (nproc), Python {python}, SQLite {sqlite3.sqlite_version}"
    if postgres_url:
        with psycopg.connect(postgres_url) as conn:
            line += f", PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}"
    return line + "".join(f", {name} {version(name)}" for name in packages)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("CHATKEEP_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server URL (default $CHATKEEP_TEST_POSTGRES_URL)")


def chosen_backends(args: argparse.Namespace, console: Console) -> list[str]:
    backends = [b for b in args.backends.split(",") if b]
    if "postgresql" in backends and not args.postgres_url:
        console.print("[yellow]postgresql skipped: no --postgres-url and no CHATKEEP_TEST_POSTGRES_URL[/]")
        backends.remove("postgresql")
    return backends
