"""Files that hold secrets are readable by their owner only (issue 15, item 6): the `.env`
made by `make` (the secret key) and the SQLite database (encrypted secrets) are 0600, and the
`var/` folder made for it is 0700 — whatever the umask of the shell that made them."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import CLI, cli_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_writes_env_for_its_owner_only(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    made = subprocess.run(
        ["sh", "-c", f"umask 022 && make -s -f {ROOT / 'Makefile'} .env"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    env = tmp_path / ".env"
    assert "RADIOSILENCE_SECRET_KEY=change-me" not in env.read_text()
    assert oct(mode(env)) == oct(0o600)


def test_the_default_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    """`radiosilence migrate` with the default database URL (./var/radiosilence.db)."""
    env = cli_env(secret_key=TEST_SECRET_KEY)
    result = subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$0" migrate', CLI],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    var = tmp_path / "var"
    assert oct(mode(var)) == oct(0o700)
    files = sorted(var.iterdir())
    assert tmp_path / "var" / "radiosilence.db" in files
    for path in files:  # the database and any -wal / -shm file SQLite left beside it
        assert oct(mode(path)) == oct(0o600), path.name
