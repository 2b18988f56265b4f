"""`radiosilence import PATH`: an mbox file or a Maildir, through the same pipeline as a sync."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import COLLEAGUE, PROSPECT, REP, make_message, now_utc
from tests.support.processes import cli_env, run_cli, serving

pytestmark = pytest.mark.integration


def conversation() -> dict[str, list[bytes]]:
    now = now_utc()
    old = now - timedelta(days=10)
    return {
        "sent": [
            make_message(
                from_=REP,
                to=[PROSPECT],
                subject="Proposal",
                date=old,
                message_id="q1@seller.example",
            ),
            make_message(
                from_=REP,
                to=[PROSPECT],
                subject="Pricing",
                date=old,
                message_id="r1@seller.example",
            ),
        ],
        "inbox": [
            make_message(
                from_=PROSPECT,
                to=[REP],
                subject="Re: Pricing",
                date=old + timedelta(days=1),
                message_id="r2@buyer.example",
                references=["r1@seller.example"],
            ),
            make_message(
                from_=COLLEAGUE, to=[REP], subject="Lunch", date=old, message_id="i1@seller.example"
            ),
            b"this is not an e-mail at all\x00\xff",
        ],
    }


def write_maildir(path: Path) -> None:
    mail = conversation()
    root = mailbox.Maildir(path, create=True)
    for raw in mail["inbox"]:
        root.add(raw)
    sent = root.add_folder("Sent")
    for raw in mail["sent"]:
        sent.add(raw)


def write_mbox(path: Path) -> None:
    box = mailbox.mbox(path, create=True)
    mail = conversation()
    for raw in mail["sent"] + mail["inbox"][:2]:
        box.add(raw)
    box.flush()
    box.close()


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_import_then_list_threads_over_the_api(kind: str, tmp_path: Path) -> None:
    source = tmp_path / ("export" if kind == "maildir" else "export.mbox")
    (write_maildir if kind == "maildir" else write_mbox)(source)
    env = cli_env(database_url=f"sqlite+aiosqlite:///{tmp_path}/rs.db", secret_key=TEST_SECRET_KEY)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert (
        run_cli(
            "user",
            "create",
            "--email",
            "rep@seller.example",
            "--password-stdin",
            env=env,
            cwd=tmp_path,
            stdin="long-enough-pw\n",
        ).returncode
        == 0
    )
    args = [
        "import",
        str(source),
        "--email",
        "rep@seller.example",
        "--mailbox",
        "Export",
        "--address",
        REP,
        "--timezone",
        "Europe/Berlin",
        "--holiday-country",
        "de",
    ]

    first = run_cli(*args, env=env, cwd=tmp_path)
    second = run_cli(*args, env=env, cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert " 4 new" in first.stdout
    if kind == "maildir":
        assert "1 unreadable (skipped)" in first.stdout
    assert "1 follow-up drafts composed" in first.stdout
    assert " 0 new" in second.stdout, second.stdout
    assert "0 follow-up drafts composed" in second.stdout
    token = run_cli("token", "create", "--email", "rep@seller.example", env=env, cwd=tmp_path)
    with (
        serving(env, tmp_path, tmp_path / "serve.log") as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token.stdout.split()[-1]}"}
        ) as api,
    ):
        items = api.get("/api/v1/threads").json()["items"]
        states = {t["message_ids"][0]: t["state"] for t in items}
        assert states == {
            "<q1@seller.example>": "quiet",
            "<r1@seller.example>": "replied",
            "<i1@seller.example>": "ignored",
        }
        events = api.get("/api/v1/events").json()["items"]
        # The quiet thread's follow-up was composed from the rep's e-mail in the file.
        assert [e["type"] for e in events] == ["thread.quiet", "draft.created"]
        (draft,) = api.get("/api/v1/drafts", params={"state": "pending"}).json()["items"]
        assert draft["in_reply_to"] == "<q1@seller.example>"
        mailbox_id = items[0]["mailbox_id"]
        mailbox = api.get(f"/api/v1/mailboxes/{mailbox_id}").json()
        assert mailbox["holiday_country"] == "DE"
        refused = api.post(f"/api/v1/mailboxes/{mailbox_id}/sync", params={"wait": "true"})
        assert refused.status_code == 409
        assert "imported from a file" in refused.json()["detail"]


def test_a_path_that_is_no_mailbox_is_a_clear_error(tmp_path: Path) -> None:
    env = cli_env(database_url=f"sqlite+aiosqlite:///{tmp_path}/rs.db", secret_key=TEST_SECRET_KEY)
    run_cli(
        "user",
        "create",
        "--email",
        "rep@seller.example",
        "--password-stdin",
        env=env,
        cwd=tmp_path,
        stdin="long-enough-pw\n",
    )
    result = run_cli(
        "import",
        str(tmp_path),
        "--email",
        "rep@seller.example",
        "--mailbox",
        "X",
        "--address",
        REP,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "is not a Maildir" in result.stderr
