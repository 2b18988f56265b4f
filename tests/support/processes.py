"""Run the real `radiosilence` command line and server as a user would."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("radiosilence"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli_env(**settings: str) -> dict[str, str]:
    """The environment of a command run as a user would, with these settings. The Dovecot
    fixture listens on loopback: IMAP hosts on private addresses are allowed unless a test
    says `imap_allow_private="false"`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOSILENCE_")}
    env["RADIOSILENCE_IMAP_ALLOW_PRIVATE"] = "true"
    env.update({f"RADIOSILENCE_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(
    *args: str, env: Mapping[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env=dict(env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def serving(env: Mapping[str, str], cwd: Path, log_path: Path) -> Iterator[str]:
    """`radiosilence serve` on a free port; yields its base URL once /healthz answers."""
    with serving_process(env, cwd, log_path) as (base, _proc):
        yield base


def rss_bytes(pid: int) -> int:
    """The resident memory of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def serving_process(
    env: Mapping[str, str], cwd: Path, log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serving`, with the server's process (for its pid)."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited early:\n{log_path.read_text()}")
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not answer:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_worker(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([CLI, "worker"], env=env, cwd=cwd, stdout=out, stderr=out)


async def wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}:\n{log.read_text()[-4000:]}")
        await asyncio.sleep(0.01)
