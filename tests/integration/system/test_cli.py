"""The command line as scripts use it."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_message
from tests.support.processes import cli_env, run_cli, serving

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


def test_token_list_revoke_and_user_disable_take_effect_at_once(tmp_path: Path) -> None:
    env = cli_env(
        secret_key=TEST_SECRET_KEY,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db",
        workers_enabled="false",
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    made = run_cli(
        "user", "create", "--email", "rep@seller.example", "--password-stdin",
        env=env, cwd=tmp_path, stdin="long-enough-pw\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr

    def token(name: str, *extra: str) -> str:
        done = run_cli(
            "token", "create", "--email", "rep@seller.example", "--name", name, *extra,
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    first, second = token("laptop"), token("crm", "--expires-days", "30")
    listed = run_cli("token", "list", "--email", "rep@seller.example", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows.keys() == {"laptop", "crm"}
    assert rows["laptop"][2] == first[:8] and rows["laptop"][-1] == "never"
    assert rows["crm"][2] == second[:8] and rows["crm"][-1] != "never"
    assert first not in listed.stdout and second not in listed.stdout

    with serving(env, tmp_path, tmp_path / "serve.log") as base:

        def status(secret: str) -> int:
            headers = {"Authorization": f"Bearer {secret}"}
            return httpx.get(base + "/api/v1/threads", headers=headers, timeout=10).status_code

        assert status(first) == 200 and status(second) == 200
        revoked = run_cli(
            "token", "revoke", "--email", "rep@seller.example", rows["laptop"][0],
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr
        assert status(first) == 401 and status(second) == 200  # the running server, at once
        disabled = run_cli(
            "user", "disable", "--email", "rep@seller.example", env=env, cwd=tmp_path
        )
        assert disabled.returncode == 0 and "disabled" in disabled.stdout
        assert status(second) == 401
        enabled = run_cli(
            "user", "disable", "--email", "rep@seller.example", "--enable", env=env, cwd=tmp_path
        )
        assert enabled.returncode == 0
        assert status(second) == 200
    gone = run_cli("token", "revoke", "--email", "rep@seller.example", "999", env=env, cwd=tmp_path)
    assert gone.returncode == 1 and "no token 999" in gone.stderr


def test_a_mailbox_name_is_looked_up_among_one_users_mailboxes(tmp_path: Path) -> None:
    """Two users each have a "Work": `backtest Work --email …` finds the owner's; without
    --email the name is ambiguous and the command says how to tell them apart."""
    env = cli_env(secret_key=TEST_SECRET_KEY, database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db")
    sent = datetime.now(UTC) - timedelta(days=20)
    ids = {}
    for n, email in enumerate(("one@seller.example", "two@seller.example")):
        made = run_cli(
            "user", "create", "--email", email, "--password-stdin",
            env=env, cwd=tmp_path, stdin="long-enough-pw\n",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        box = mailbox.mbox(tmp_path / f"{n}.mbox", create=True)
        for i in range(n + 1):  # one thread in the first user's "Work", two in the second's
            box.add(
                make_message(
                    from_=email, to=["buyer@prospect.example"], subject=f"Deal {i}",
                    date=sent, message_id=f"{n}-{i}@seller",
                )
            )  # fmt: skip
        box.flush()
        box.close()
        imported = run_cli(
            "import", str(tmp_path / f"{n}.mbox"), "--email", email, "--mailbox", "Work",
            "--address", email, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        ids[email] = int(imported.stdout.split()[1].rstrip(":"))
    assert len(set(ids.values())) == 2

    for email, threads in (("two@seller.example", 2), ("one@seller.example", 1)):
        result = run_cli(
            "backtest", "Work", "--email", email, "--days", "30", env=env, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"mailbox {ids[email]}: ")
        assert f"backtest: 30 days, {threads} threads" in result.stdout.strip().splitlines()[-1]

    ambiguous = run_cli("backtest", "Work", env=env, cwd=tmp_path)
    assert ambiguous.returncode == 1
    listed = ", ".join(str(i) for i in sorted(ids.values()))
    assert f"several mailboxes are named 'Work' (ids {listed}): give the id" in ambiguous.stderr
    assert "--email" in ambiguous.stderr
    # An id is scoped too: another user's mailbox is not found through this user's e-mail.
    theirs = run_cli(
        "backtest", str(ids["one@seller.example"]), "--email", "two@seller.example",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert theirs.returncode == 1
    assert f"no mailbox with id or name '{ids['one@seller.example']}'" in theirs.stderr
    nobody = run_cli("backtest", "Work", "--email", "nobody@x.example", env=env, cwd=tmp_path)
    assert nobody.returncode == 1 and "no user with e-mail nobody@x.example" in nobody.stderr
