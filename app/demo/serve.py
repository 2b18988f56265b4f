"""`radiosilence demo`: start the private Dovecot (when installed), prepare the demo user and
mailbox, serve like `radiosilence serve`, and print how to sign in once the server answers.
Stopping it (Ctrl-C, SIGTERM) stops the server, then Dovecot, and removes its files."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import TextIO

from app.config import Settings
from app.demo.dovecot import DovecotServer, dovecot_available, start_dovecot
from app.demo.setup import MAILBOX_NAME, DemoSetup, prepare_demo
from app.services.context import Context
from app.services.database import upgrade_schema

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """SIGTERM arrived: leave through the `finally` that stops Dovecot."""


def _stop(_sig: int, _frame: FrameType | None) -> None:
    raise _Stopped


def run_demo(settings: Settings, *, use_imap: bool, out: TextIO = sys.stdout) -> int:
    import uvicorn

    from app.main import create_app

    upgrade_schema(settings)
    workdir = Path(tempfile.mkdtemp(prefix="radiosilence-demo-"))
    # uvicorn handles SIGTERM itself and raises it again once it has shut down: this
    # handler then turns it into an exception, so that Dovecot is stopped below.
    previous = signal.signal(signal.SIGTERM, _stop)
    dovecot: DovecotServer | None = None
    try:
        if use_imap and dovecot_available():
            dovecot = start_dovecot(workdir / "dovecot")
            # The demo's own IMAP server listens on loopback, which the mail host guard
            # refuses by default: this process allows it (a trial, not a shared server).
            settings = settings.model_copy(update={"imap_allow_private": True})
        elif use_imap:
            log.warning("demo.no_dovecot the sample is imported from files instead")
        setup = asyncio.run(_prepare(settings, dovecot, workdir))
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level.lower(),
                proxy_headers=False,
                access_log=False,  # uvicorn logs requests to stdout: the demo line stays last
            )
        )
        asyncio.run(_serve(server, settings, setup, out))
        return 0
    except _Stopped:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if dovecot is not None:
            dovecot.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _prepare(settings: Settings, dovecot: DovecotServer | None, workdir: Path) -> DemoSetup:
    ctx = Context.create(settings)
    try:
        return await prepare_demo(ctx, dovecot=dovecot, workdir=workdir)
    finally:
        await ctx.close()


async def _serve(server: object, settings: Settings, setup: DemoSetup, out: TextIO) -> None:
    import uvicorn

    assert isinstance(server, uvicorn.Server)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # set once the socket listens and the app has started
        if serving.done():
            await serving  # it could not start (port taken …): its error ends the demo
            return
        await asyncio.sleep(0.05)
    for line in demo_lines(settings, setup):
        print(line, file=out)
    out.flush()
    await serving


def base_url(settings: Settings) -> str:
    host = settings.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/"


def demo_lines(settings: Settings, setup: DemoSetup) -> list[str]:
    """What the demo prints; the last line is the contract: `demo: URL email=… password=…`."""
    source = "a private Dovecot on this machine" if setup.imap else "files (no Dovecot)"
    lines = [
        f"sample: mailbox {MAILBOX_NAME!r} read from {source}: {setup.quiet} quiet threads, "
        f"{setup.drafts} follow-up drafts to review. Ctrl-C stops the demo.",
    ]
    if setup.imap is not None:
        lines.append(
            f"imap: {setup.imap.host}:{setup.imap.port} (plain IMAP, loopback only) "
            f"username={setup.imap.username} password={setup.imap.password} "
            "- open it in a mail client to see approved drafts land in Drafts"
        )
    lines.append(f"demo: {base_url(settings)} email={setup.email} password={setup.password}")
    return lines
