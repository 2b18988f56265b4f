"""The command line as scripts use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import cli_env, run_cli

pytestmark = pytest.mark.integration


def test_missing_secret_key_stops_with_one_clear_line(tmp_path: Path) -> None:
    result = run_cli("migrate", env=cli_env(), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: invalid configuration: RADIOSILENCE_SECRET_KEY is missing"]


def test_users_and_tokens(tmp_path: Path) -> None:
    env = cli_env(secret_key=TEST_SECRET_KEY, database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db")
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    made = run_cli(
        "user",
        "create",
        "--email",
        "Rep@Seller.example",
        "--password-stdin",
        env=env,
        cwd=tmp_path,
        stdin="long-enough-pw\n",
    )
    assert made.returncode == 0, made.stderr
    again = run_cli(
        "user",
        "create",
        "--email",
        "rep@seller.example",
        "--password-stdin",
        env=env,
        cwd=tmp_path,
        stdin="long-enough-pw\n",
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr
    token = run_cli("token", "create", "--email", "rep@seller.example", env=env, cwd=tmp_path)
    assert token.returncode == 0
    assert token.stdout.strip().splitlines()[-1].startswith("rs_")
    unknown = run_cli("token", "create", "--email", "nobody@x.example", env=env, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no user with e-mail nobody@x.example" in unknown.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", env=cli_env(), cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "user", "token", "sync"):
        assert command in result.stdout
