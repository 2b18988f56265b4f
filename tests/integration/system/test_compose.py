"""docker-compose.yml, run as written but outside Docker (no engine here): its API and worker
commands with their environment and the secret.env that scripts/compose-secrets.py writes,
against a fresh, empty database on the machine's PostgreSQL, all started at once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import PG_ADMIN_DSN, _pg, _pg_url, pg_rows
from tests.support.processes import CLI, free_port, run_cli

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
WORKERS = 2


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A new PostgreSQL database with no schema at all."""
    name = f"rs_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}`, with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def service_env(
    service: dict[str, Any], secret_env: dict[str, str], **local: str
) -> dict[str, str]:
    """What compose gives the container: env_file, then `environment` over it; then what
    differs outside Docker (`local`: loopback address, a free port, the test database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOSILENCE_")}
    assert service["env_file"] == ["secret.env"]
    env.update(secret_env)
    env.update({k: interpolate(str(v)) for k, v in service.get("environment", {}).items()})
    env.update(local)
    return env


def read_env_file(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_the_compose_file_describes_a_working_team_server(tmp_path: Path, empty_pg: str) -> None:
    spec = compose()["services"]
    db, api, worker = spec["db"], spec["api"], spec["worker"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"] and api["depends_on"]["db"]["condition"] == "service_healthy"
    assert worker["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["environment"]["RADIOSILENCE_WORKERS_ENABLED"] == "false"

    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compose-secrets.py")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    secret_env = read_env_file(made.stdout)
    assert len(secret_env["RADIOSILENCE_SECRET_KEY"]) >= 48
    password = secret_env["POSTGRES_PASSWORD"]
    assert secret_env["RADIOSILENCE_DATABASE_URL"] == (
        f"postgresql+asyncpg://radiosilence:{password}@db:5432/radiosilence"
    )
    port = free_port()
    local = {
        "RADIOSILENCE_DATABASE_URL": empty_pg,  # the machine's PostgreSQL, not the db service
        "RADIOSILENCE_HOST": "127.0.0.1",
        "RADIOSILENCE_PORT": str(port),
        "RADIOSILENCE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    api_env = service_env(api, secret_env, **local)
    worker_env = service_env(worker, secret_env, **local)

    def start(command: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        assert command[0] == "radiosilence"
        with (tmp_path / f"{name}.log").open("wb") as log:
            return subprocess.Popen(
                [CLI, *command[1:]], env=env, cwd=tmp_path, stdout=log, stderr=log
            )

    # All at once on an empty database: one of them migrates, the others wait for it.
    procs = {"api": start(api["command"], api_env, "api")}
    for i in range(WORKERS):
        procs[f"worker{i}"] = start(worker["command"], worker_env, f"worker{i}")
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            for name, proc in procs.items():
                assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.2)

        # The README's first user: `docker compose exec api radiosilence user create …`
        created = run_cli(
            "user", "create", "--admin", "--email", "admin@team.example", "--password-stdin",
            env=api_env, cwd=tmp_path, stdin="a-long-team-password\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        token = run_cli(
            "token", "create", "--email", "admin@team.example", env=api_env, cwd=tmp_path
        )
        assert token.returncode == 0, token.stderr
        listed = httpx.get(
            base + "/api/v1/mailboxes",
            headers={"Authorization": f"Bearer {token.stdout.strip().splitlines()[-1]}"},
            timeout=10,
        )
        assert listed.status_code == 200, listed.text

        def live_workers() -> int:
            return len(pg_rows(empty_pg, "SELECT owner FROM workers"))

        deadline = time.monotonic() + 30
        while live_workers() < WORKERS:  # both workers run; the API runs none
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert live_workers() == WORKERS
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=60) for name, proc in procs.items()}
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (as its docs say).
    assert codes == {name: -signal.SIGTERM if name == "api" else 0 for name in procs}
    assert pg_rows(empty_pg, "SELECT owner FROM workers") == []  # each said goodbye

    versions = pg_rows(empty_pg, "SELECT version_num FROM alembic_version")
    assert len(versions) == 1
    for name in procs:  # RADIOSILENCE_LOG_FORMAT=json: every line one object
        lines = (tmp_path / f"{name}.log").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= e.keys() for e in events)
        started = [e for e in events if e.get("event") == "workers.started"]
        assert len(started) == (0 if name == "api" else 1), name


def test_processes_starting_together_migrate_an_empty_database_once(
    tmp_path: Path, empty_pg: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOSILENCE_")}
    env.update(RADIOSILENCE_SECRET_KEY="k" * 48, RADIOSILENCE_DATABASE_URL=empty_pg)
    procs = [
        subprocess.Popen([CLI, "migrate"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
        for _ in range(4)
    ]  # fmt: skip
    outputs = [proc.communicate(timeout=120)[0].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], outputs
    assert len(pg_rows(empty_pg, "SELECT version_num FROM alembic_version")) == 1


assert PG_ADMIN_DSN  # the machine's PostgreSQL (tests/conftest.py)
