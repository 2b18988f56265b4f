"""The mailbox host is no port scanner (issue 15, item 3), against a real `radiosilence serve`:
with RADIOSILENCE_IMAP_ALLOW_PRIVATE off, IMAP and SMTP hosts on loopback (127.0.0.2,
`localhost`, `::1`) are refused before any connection — listeners on those addresses never
see one; with it on (the tests' Dovecot), a connection that fails is answered with one
message, whether the port was closed, silent, or spoke TLS with an unknown certificate."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.mail.imap import ImapAccount
from app.services import mailboxes
from app.services.context import Context
from app.services.mailhosts import MAIL_REFUSAL
from app.webhooks.urlguard import UrlGuard
from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, make_user
from tests.support.processes import cli_env, free_port, run_cli, serving

pytestmark = pytest.mark.integration


@pytest.fixture
def listeners() -> Iterator[tuple[int, list[socket.socket]]]:
    """One port, listened on at 127.0.0.1, 127.0.0.2 and ::1: whoever connects shows up."""
    port = free_port()
    socks = []
    for family, address in [
        (socket.AF_INET, "127.0.0.1"),
        (socket.AF_INET, "127.0.0.2"),
        (socket.AF_INET6, "::1"),
    ]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((address, port))
        sock.listen(64)
        sock.setblocking(False)
        socks.append(sock)
    yield port, socks
    for sock in socks:
        sock.close()


def connections(socks: list[socket.socket]) -> int:
    count = 0
    for sock in socks:
        while True:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                break
            conn.close()
            count += 1
    return count


def server_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
        **settings,
    )
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    return env


def test_loopback_hosts_are_refused_before_connecting(
    tmp_path: Path, listeners: tuple[int, list[socket.socket]], imap_user: ImapUser
) -> None:
    port, socks = listeners
    env = server_env(tmp_path, imap_allow_private="false", imap_allow_plaintext="true")
    token = make_user("rep@seller.example", env, tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    with (
        serving(env, tmp_path, tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, headers=auth, timeout=30) as api,
    ):
        for host in ("127.0.0.2", "localhost", "::1", "127.0.0.1"):
            body = imap_user.mailbox_body()
            body["imap"] = {**body["imap"], "host": host, "port": port}  # type: ignore[dict-item]
            for verify in ("true", "false"):
                refused = api.post("/api/v1/mailboxes", params={"verify": verify}, json=body)
                assert refused.status_code == 422, refused.text
                assert refused.json()["code"] == "mail_host_refused"
                detail = refused.json()["detail"]
                assert detail.startswith("imap.host: "), detail
                assert "loopback" in detail and "RADIOSILENCE_IMAP_ALLOW_PRIVATE" in detail
        assert api.get("/api/v1/mailboxes").json()["items"] == []
        assert connections(socks) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "imap.connect_failed" not in log


def test_smtp_hosts_pass_the_same_guard(tmp_path: Path) -> None:
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(
        b"From rep@seller.example Mon Nov 23 10:00:00 2026\n"
        b"From: rep@seller.example\nTo: buyer@customer.example\nSubject: Hello\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <imp1@seller.example>\n\nHi\n"
    )
    env = server_env(tmp_path, imap_allow_private="false")
    token = make_user("rep@seller.example", env, tmp_path)
    imported = run_cli(
        *("import", str(mbox), "--email", "rep@seller.example", "--mailbox", "Export"),
        *("--address", "rep@seller.example"),
        env=env,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    auth = {"Authorization": f"Bearer {token}"}
    with serving(env, tmp_path, tmp_path / "serve.log") as base:
        for host in ("127.0.0.2", "localhost", "::1"):
            smtp = {"host": host, "port": 465, "security": "tls", "username": None}
            refused = httpx.put(
                f"{base}/api/v1/mailboxes/1/draft-settings", headers=auth, json={"smtp": smtp}
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"].startswith("smtp.host: "), refused.text
            assert "loopback" in refused.json()["detail"]


def test_failed_connections_all_get_one_answer(tmp_path: Path, imap_user: ImapUser) -> None:
    """Allowed on loopback (the tests' setting): closed port, silent port, TLS with a
    certificate from an unknown CA, a greeting that is not IMAP — the same words."""
    env = server_env(tmp_path, imap_test_timeout_seconds="1", imap_allow_plaintext="true")
    token = make_user("rep@seller.example", env, tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    closed = free_port()
    with socket.socket() as silent, socket.socket() as chatty:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        chatty.bind(("127.0.0.1", 0))
        chatty.listen(8)
        cases = {
            "closed": (closed, "plain"),
            "silent": (silent.getsockname()[1], "plain"),
            "tls with an unknown CA": (imap_user.server.tls_port, "tls"),
            "tls to a plain port": (imap_user.server.port, "tls"),
        }
        answers = {}
        with serving(env, tmp_path, tmp_path / "serve.log") as base:
            for case, (port, security) in cases.items():
                body = imap_user.mailbox_body()
                body["imap"] = {  # type: ignore[dict-item]
                    **body["imap"],  # type: ignore[dict-item]
                    "host": "127.0.0.1",
                    "port": port,
                    "security": security,
                }
                answer = httpx.post(f"{base}/api/v1/mailboxes", headers=auth, json=body, timeout=30)
                assert answer.status_code == 422, (case, answer.text)
                detail = answer.json()["detail"].replace(f":{port} ", ":PORT ")
                answers[case] = (answer.json()["code"], detail.replace(security, "SECURITY"))
    assert len(set(answers.values())) == 1, answers
    code, detail = next(iter(answers.values()))
    assert code == "imap_connection_failed"
    assert "nothing answered, the connection was refused or TLS failed" in detail
    log = (tmp_path / "serve.log").read_text()
    assert log.count("imap.connect_failed") == len(cases)  # the operator sees the cause


async def test_the_connection_goes_to_the_checked_address(
    ctx: Context, imap_user: ImapUser
) -> None:
    """A name resolved once by the guard (here by a stub: the system resolver does not know
    it) is connected to at the address that was checked, never resolved again."""

    async def resolve(host: str, port: int) -> list[str]:
        assert host == "imap.pinned.example"
        return [imap_user.server.host]

    ctx.settings = ctx.settings.model_copy(update={"imap_allow_plaintext": True})
    ctx.mail_guard = UrlGuard(allow_private=True, resolver=resolve, refusal=MAIL_REFUSAL)
    account = ImapAccount(
        host="imap.pinned.example",
        port=imap_user.server.port,
        security="plain",
        username=imap_user.username,
        secret=imap_user.password,
    )
    assert "INBOX" in await mailboxes.test_connection(ctx, account, user_id=1)
