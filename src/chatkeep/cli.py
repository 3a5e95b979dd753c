"""The `chatkeep` command: parse, call a service, print."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from chatkeep import __version__
from chatkeep.auth import service as auth_service
from chatkeep.auth.schemas import UserCreate
from chatkeep.config import Settings, load_settings
from chatkeep.db import Database, session_scope
from chatkeep.db.migrate import upgrade
from chatkeep.errors import ChatkeepError

T = TypeVar("T")

app = typer.Typer(help="chatkeep: a self-hostable chat-session server for LLM applications.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
checkpoints_app = typer.Typer(help="Manage LangGraph checkpoints.", no_args_is_help=True)
app.add_typer(checkpoints_app, name="checkpoints")

console = Console()
err_console = Console(stderr=True)


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the store; domain errors exit with their message."""

    upgrade(settings.database_url)

    async def main() -> T:
        database = Database(settings)
        try:
            async with session_scope(database) as db:
                return await work(db)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except ChatkeepError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; tab-separated lines when piped (nothing cut, easy to grep)."""
    if not console.is_terminal:
        for row in [headers, *rows]:
            print("\t".join(row))
        return
    table = Table(*headers)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _ts(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@app.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    settings = load_settings()
    upgrade(settings.database_url)
    console.print("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [CHATKEEP_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [CHATKEEP_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [CHATKEEP_WORKERS].")] = None,
) -> None:
    """Apply migrations and start the server."""
    import uvicorn

    settings = load_settings(host=host, port=port, workers=workers)
    _announce(settings)  # migrates, too
    if settings.workers > 1 and not settings.redis_url:
        err_console.print(
            "[yellow]warning:[/yellow] with several workers, runs' event streams and cancels need a shared "
            "broker: set CHATKEEP_REDIS_URL (each worker otherwise sees only its own runs)"
        )
    uvicorn.run(
        "chatkeep.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,  # chatkeep writes its own access lines, without query strings
        log_config=None,
        # Open event streams would otherwise hold a shutdown forever.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )


def _announce(settings: Settings) -> None:
    console.print(
        f"[bold]chatkeep {__version__}[/bold] on http://{settings.host}:{settings.port}"
        f"  (database {settings.database_url.split('@')[-1]}, default model {settings.default_model})"
    )

    async def first_user(db: AsyncSession):
        if settings.bootstrap_user and await auth_service.count_users(db) == 0:
            return await auth_service.create_user(db, UserCreate(name="default"))
        return None

    created = _run(settings, first_user)
    if created is not None:
        console.print("First start: created user [bold]default[/bold] with this API key (shown only once):")
        console.print(f"  [bold green]{created.api_key}[/bold green]")
        console.print(
            f'Try: curl -H "Authorization: Bearer {created.api_key}" http://{settings.host}:{settings.port}/v1/sessions',
            soft_wrap=True,
        )
    else:
        console.print("Get an API key with: .venv/bin/chatkeep users create NAME")


@users_app.command("create")
def users_create(
    name: str,
    email: Annotated[str | None, typer.Option(help="Contact address.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"user_id", "api_key"}.')] = False,
) -> None:
    """Create a user and print its id and a new API key (shown once)."""
    settings = load_settings()
    created = _run(settings, lambda db: auth_service.create_user(db, UserCreate(name=name, email=email)))
    if as_json:
        print(json.dumps({"user_id": created.user.id, "api_key": created.api_key}))
    else:
        console.print(f"user [bold]{created.user.name}[/bold] id {created.user.id}")
        console.print(f"API key (shown only once): [bold green]{created.api_key}[/bold green]")


@users_app.command("list")
def users_list() -> None:
    """List users."""
    settings = load_settings()
    page = _run(settings, lambda db: auth_service.list_users(db, limit=settings.max_page_size))
    rows = [[user.id, user.name, user.email or "-", _ts(user.created_at)] for user in page.data]
    _print_table(["id", "name", "email", "created"], rows)


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Argument(help="User id or name.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Issue a new API key for a user (shown once)."""
    key, secret = _run(load_settings(), lambda db: auth_service.create_key(db, user, name))
    console.print(f"key id {key.id}")
    console.print(f"API key (shown only once): [bold green]{secret}[/bold green]")


@keys_app.command("list")
def keys_list(
    user: Annotated[str, typer.Argument(help="User id or name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
) -> None:
    """List a user's API keys (never the keys themselves)."""
    keys = _run(load_settings(), lambda db: auth_service.list_keys(db, user))
    if as_json:
        print(json.dumps([key.model_dump(mode="json") for key in keys]))
        return
    rows = [
        [key.id, key.name or "-", key.prefix + "…", _ts(key.created_at), _ts(key.last_used_at), _ts(key.revoked_at)]
        for key in keys
    ]
    _print_table(["id", "name", "prefix", "created", "last used", "revoked"], rows)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key: it stops working at once."""
    key = _run(load_settings(), lambda db: auth_service.revoke_key(db, key_id))
    console.print(f"revoked key {key.id} ({key.prefix}…)")


@checkpoints_app.command("prune")
def checkpoints_prune(
    keep_last: Annotated[int, typer.Option("--keep-last", min=1, help="Checkpoints kept per thread namespace.")],
) -> None:
    """Keep the newest K checkpoints of every LangGraph thread; delete older ones (pending
    writes and the values kept checkpoints need stay). Sessions and messages are untouched."""
    from rich.progress import Progress

    from chatkeep.checkpoint import service as checkpoint_service

    settings = load_settings()
    upgrade(settings.database_url)
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("pruning threads", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        retained = checkpoint_service.prune_database(settings.database_url, keep_last, settings, advance)
    console.print(
        f"pruned {retained.checkpoints} checkpoints and {retained.blobs} blobs in {retained.threads} threads"
    )
    if retained.skipped:
        console.print(f"left {len(retained.skipped)} namespaces of DeltaChannel graphs alone")


if __name__ == "__main__":
    app()
