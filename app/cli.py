"""The `radiosilence` command line. Thin: parse, call a service, print."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from app import __version__, logformat
from app.config import Settings, load_settings
from app.domain.backtest import weekly_table
from app.errors import ConfigError, RadioSilenceError
from app.runtime import raise_open_files_limit, settle_heap
from app.services import accounts, backtest, imports
from app.services import sync as sync_service
from app.services.context import Context
from app.services.database import upgrade_schema
from app.services.mailbox_lookup import resolve_mailbox

T = TypeVar("T")
OWNER_HELP = "the owner's e-mail: MAILBOX is then looked up among that user's mailboxes only"
log = logging.getLogger("radiosilence")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
        _setup_logging(settings)
        result: int = args.handler(settings, args)
        return result
    except RadioSilenceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="radiosilence",
        description="Notices when a sales conversation has gone quiet. Settings come from "
        "RADIOSILENCE_* environment variables and ./.env (see .env.example).",
    )
    p.add_argument("--version", action="version", version=f"radiosilence {__version__}")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="web pages, /api/v1 and the background workers")
    serve.add_argument("--host", help="address to listen on (default: RADIOSILENCE_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: RADIOSILENCE_PORT)")
    serve.add_argument("--no-workers", action="store_true", help="serve without background work")
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser(
        "demo",
        help="serve a sample mailbox with a demo user: quiet threads and drafts in a minute",
        description="Creates (or reuses) the demo user with a new random password, puts a "
        "sample mailbox into a private Dovecot on 127.0.0.1 when one is installed (else "
        "imports it from files), composes its drafts, then serves like `serve`. The last "
        "line printed is `demo: URL email=EMAIL password=PASSWORD`.",
    )
    demo.add_argument("--host", help="address to listen on (default: RADIOSILENCE_HOST)")
    demo.add_argument("--port", type=int, help="port to listen on (default: RADIOSILENCE_PORT)")
    demo.add_argument(
        "--no-imap",
        action="store_true",
        help="import the sample from files even when Dovecot is installed "
        "(approved drafts are then downloaded as .eml)",
    )
    demo.set_defaults(handler=_demo)

    worker = sub.add_parser("worker", help="background workers only (for scale-out)")
    worker.set_defaults(handler=_worker)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(handler=_migrate)

    user = sub.add_parser("user", help="manage users").add_subparsers(metavar="ACTION")
    create = user.add_parser("create", help="create a user")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input",
    )
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    create.set_defaults(handler=_user_create)
    disable = user.add_parser(
        "disable", help="disable a user: their tokens and sessions stop working at once"
    )
    disable.add_argument("--email", required=True)
    disable.add_argument("--enable", action="store_true", help="enable the user again instead")
    disable.set_defaults(handler=_user_disable)

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(metavar="ACTION")
    tcreate = token.add_parser("create", help="create an API token (printed once, last line)")
    tcreate.add_argument("--email", required=True)
    tcreate.add_argument("--name", default="cli", help="a label to recognise the token by")
    tcreate.add_argument(
        "--expires-days",
        type=int,
        metavar="DAYS",
        help="valid for DAYS days (default: until revoked)",
    )
    tcreate.set_defaults(handler=_token_create)
    tlist = token.add_parser("list", help="list a user's tokens (id, name, first characters)")
    tlist.add_argument("--email", required=True)
    tlist.set_defaults(handler=_token_list)
    trevoke = token.add_parser("revoke", help="revoke a token: refused from its next request on")
    trevoke.add_argument("--email", required=True)
    trevoke.add_argument("id", type=int, metavar="ID", help="the token's id (see `token list`)")
    trevoke.set_defaults(handler=_token_revoke)

    sync = sub.add_parser("sync", help="read new mail of one mailbox now and run the rules")
    sync.add_argument("mailbox", metavar="MAILBOX", help="the mailbox's id, or its unique name")
    sync.add_argument("--email", help=OWNER_HELP)
    sync.set_defaults(handler=_sync)

    backtest = sub.add_parser(
        "backtest",
        help="replay the rules over the stored mail: how often was 'quiet' a false alarm?",
        description="Replays the mailbox's current rules day by day over its synced mail, "
        "using at each day's end only the messages dated before it, and reports how many "
        "threads would have been flagged quiet and how many of those got a reply later anyway.",
    )
    backtest.add_argument("mailbox", metavar="MAILBOX", help="the mailbox's id, or its unique name")
    backtest.add_argument("--email", help=OWNER_HELP)
    backtest.add_argument("--days", type=int, default=90, help="how many past days (default 90)")
    backtest.set_defaults(handler=_backtest)

    imp = sub.add_parser(
        "import",
        help="read an mbox file or a Maildir into a mailbox, then run the rules",
        description="Try Radio Silence on an export without giving it IMAP access. The mailbox "
        "NAME is created when missing. Importing the same file again adds nothing.",
    )
    imp.add_argument("path", metavar="PATH", type=Path, help="an mbox file or a Maildir folder")
    imp.add_argument("--email", required=True, help="the user who owns the mailbox")
    imp.add_argument("--mailbox", required=True, metavar="NAME", help="the mailbox's name")
    imp.add_argument(
        "--address",
        action="append",
        required=True,
        metavar="ADDR",
        help="one of the rep's own addresses (repeat for aliases)",
    )
    imp.add_argument("--timezone", default="UTC", help="the rep's IANA time zone (default UTC)")
    imp.add_argument(
        "--holiday-country",
        metavar="CC",
        help="the country whose public holidays are not business days, e.g. DE (default none)",
    )
    imp.set_defaults(handler=_import)
    return p


def _setup_logging(settings: Settings) -> None:
    logformat.configure(settings.log_level, settings.log_format)
    # Alembic narrates every check at INFO; only `migrate` should talk about the schema.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _with_context(settings: Settings, work: Callable[[Context], Awaitable[T]]) -> T:
    """Run `work` against an up-to-date database: a first command on a new machine just works."""
    upgrade_schema(settings)

    async def run() -> T:
        ctx = Context.create(settings)
        settle_heap()
        try:
            return await work(ctx)
        finally:
            await ctx.close()

    return asyncio.run(run())


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    logging.getLogger("alembic").setLevel(logging.INFO)
    upgrade_schema(settings)
    print("database is up to date")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.no_workers:
        overrides["workers_enabled"] = False
    settings = settings.model_copy(update=overrides)
    upgrade_schema(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # JSON: uvicorn's own lines go through the root logger's formatter as well.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        proxy_headers=False,
    )
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from app.demo.serve import run_demo

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return run_demo(settings.model_copy(update=overrides), use_imap=not args.no_imap)


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from app.workers import Workers

    async def run(ctx: Context) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        exporter = None
        if settings.metrics_port is not None:
            # This process's own counters only: the stored-state gauges come from `serve`.
            try:
                exporter, _ = start_http_server(settings.metrics_port, addr=settings.host)
            except OSError as exc:
                raise ConfigError(
                    f"RADIOSILENCE_METRICS_PORT={settings.metrics_port}: cannot listen on "
                    f"{settings.host} ({exc.strerror or exc})"
                ) from None
            log.info("metrics.serving at=%s:%s", settings.host, settings.metrics_port)
        open_files = raise_open_files_limit()
        log.info("worker.open_files_limit=%s", open_files)
        workers = Workers(ctx)
        workers.start()
        await stop.wait()
        await workers.stop()
        if exporter is not None:
            exporter.shutdown()
        return 0

    return _with_context(settings, run)


def _user_create(settings: Settings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    user_id = _with_context(
        settings,
        lambda ctx: accounts.create_user(
            ctx, email=args.email, password=password, is_admin=args.admin
        ),
    )
    print(f"created user {args.email.strip().lower()} (id {user_id})")
    return 0


def _user_disable(settings: Settings, args: argparse.Namespace) -> int:
    row = _with_context(
        settings,
        lambda ctx: accounts.set_user_disabled(ctx, email=args.email, disabled=not args.enable),
    )
    print(f"user {row.email} is {'enabled' if row.disabled_at is None else 'disabled'}")
    return 0


def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    async def run(ctx: Context) -> str:
        expires = None
        if args.expires_days is not None:
            if not 1 <= args.expires_days <= 3660:
                raise RadioSilenceError("--expires-days must be between 1 and 3660")
            expires = ctx.clock() + timedelta(days=args.expires_days)
        return await accounts.create_token(
            ctx, email=args.email, name=args.name, expires_at=expires
        )

    token = _with_context(settings, run)
    print("API token (shown once; keep it safe):", file=sys.stderr)
    print(token)
    return 0


def _token_list(settings: Settings, args: argparse.Namespace) -> int:
    rows = _with_context(settings, lambda ctx: accounts.list_tokens_of(ctx, email=args.email))
    print(f"{'id':>6}  {'name':<24} {'starts with':<12} {'created':<17} {'last used':<17} expires")
    for r in rows:
        print(
            f"{r.id:>6}  {r.name[:24]:<24} {r.prefix:<12} {_minute(r.created_at):<17} "
            f"{_minute(r.last_used_at):<17} {_minute(r.expires_at) if r.expires_at else 'never'}"
        )
    return 0


def _minute(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    _with_context(
        settings, lambda ctx: accounts.revoke_token_of(ctx, email=args.email, token_id=args.id)
    )
    print(f"token {args.id} revoked")
    return 0


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    async def run(ctx: Context) -> int:
        mailbox_id = await resolve_mailbox(ctx, args.mailbox, email=args.email)

        def progress(folder: str, done: int, total: int) -> None:
            print(f"\r{folder}: {done}/{total} messages", end="", file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)

        outcome = await sync_service.sync_mailbox(
            ctx, mailbox_id, wait_for_lease=ctx.settings.lease_seconds, progress=progress
        )
        print(
            f"mailbox {mailbox_id}: {outcome.folders} folders, {outcome.new_messages} new "
            f"messages, {outcome.skipped} unreadable (skipped), "
            f"{outcome.threads_evaluated} threads evaluated"
        )
        return 0

    return _with_context(settings, run)


def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    async def run(ctx: Context) -> int:
        mailbox_id = await resolve_mailbox(ctx, args.mailbox, email=args.email)
        report = await backtest.backtest_mailbox(ctx, mailbox_id, days=args.days)
        print(f"mailbox {mailbox_id}: {report.first_day} to {report.last_day}")
        for line in weekly_table(report):
            print(line)
        return 0

    return _with_context(settings, run)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    def progress(folder: str, read: int) -> None:
        print(f"\r{folder}: {read} messages read", end="", file=sys.stderr, flush=True)

    async def run(ctx: Context) -> int:
        outcome = await imports.import_mail(
            ctx,
            args.path,
            email=args.email,
            mailbox_name=args.mailbox,
            addresses=args.address,
            timezone=args.timezone,
            holiday_country=args.holiday_country,
            progress=progress,
        )
        print(file=sys.stderr)
        print(
            f"mailbox {outcome.mailbox_id}: {outcome.folders} folders, {outcome.read} messages "
            f"read, {outcome.new_messages} new, {outcome.skipped} unreadable (skipped), "
            f"{outcome.threads_evaluated} threads evaluated, {outcome.drafts_created} "
            "follow-up drafts composed"
        )
        return 0

    return _with_context(settings, run)
