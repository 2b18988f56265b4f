"""PATCH /api/v1/mailboxes/{id}: a field left out keeps its value; a null is refused where the
mailbox cannot do without the field (found by the OpenAPI fuzz run: it used to be a 500)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services import imports
from app.services.context import Context
from tests.factories import ImapUser
from tests.support.api import api_client

pytestmark = pytest.mark.integration


async def test_patch_changes_what_is_given_and_refuses_nulls_it_cannot_store(
    ctx: Context, imap_user: ImapUser
) -> None:
    async with await api_client(ctx, "rep@seller.example") as api:
        created = await api.post(
            "/api/v1/mailboxes", json=imap_user.mailbox_body(holiday_country="DE")
        )
        assert created.status_code == 201, created.text
        path = f"/api/v1/mailboxes/{created.json()['id']}"

        renamed = await api.patch(path, json={"name": "Sales", "holiday_country": None})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Sales"
        assert renamed.json()["holiday_country"] is None  # null clears what may be empty
        assert renamed.json()["timezone"] == "UTC"  # left out: kept

        for body, field in [
            ({"name": None}, "name"),
            ({"addresses": None}, "addresses"),
            ({"timezone": None, "name": None}, "name, timezone"),
            ({"imap": {"host": None}}, "host"),
            ({"imap": {"port": None, "username": None}}, "port, username"),
        ]:
            refused = await api.patch(path, json=body)
            assert refused.status_code == 422, (body, refused.text)
            assert f"{field} cannot be null" in refused.text, refused.text
        assert (await api.get(path)).json() == renamed.json()  # nothing changed meanwhile

        # The published schema says the same, so generated clients never send those nulls.
        schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]
        for model, field in [("MailboxPatch", "name"), ("ImapPatch", "host")]:
            assert schemas[model]["properties"][field]["type"] == "string"
            assert "null" not in str(schemas[model]["properties"][field])
        assert {"type": "null"} in schemas["MailboxPatch"]["properties"]["holiday_country"]["anyOf"]


async def test_patch_refuses_what_would_break_deeper_down(
    ctx: Context, imap_user: ImapUser
) -> None:
    """Found by the fuzz run: a country code that is a name in the `holidays` module ("SEP"
    is its September constant) and a host name the socket layer cannot encode were 500s."""
    async with await api_client(ctx, "rep@seller.example") as api:
        created = await api.post("/api/v1/mailboxes", json=imap_user.mailbox_body())
        path = f"/api/v1/mailboxes/{created.json()['id']}"
        for country in ("SEP", "Sep", "__init__", "XX"):
            refused = await api.patch(path, json={"holiday_country": country})
            assert refused.status_code == 422, refused.text
            assert "unknown holiday_country" in refused.json()["detail"]
        assert (await api.patch(path, json={"holiday_country": "de"})).json()[
            "holiday_country"
        ] == "DE"
        for host in ("\x16\x8b", "a b", "x" * 70 + ".example"):
            refused = await api.patch(path, json={"imap": {"host": host}})
            assert refused.status_code == 422, refused.text
            assert "host" in refused.json()["detail"]


async def test_an_imported_mailbox_can_be_renamed_and_given_a_server(
    ctx: Context, tmp_path: Path, imap_user: ImapUser
) -> None:
    """It has no IMAP server: only a change that adds one is checked against a server."""
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(
        b"From rep@seller.example Mon Nov 23 10:00:00 2026\n"
        b"From: rep@seller.example\nTo: buyer@customer.example\nSubject: Hello\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <imp1@seller.example>\n\nHi\n"
    )
    async with await api_client(ctx, "rep@seller.example") as api:
        await imports.import_mail(
            ctx,
            mbox,
            email="rep@seller.example",
            mailbox_name="Export",
            addresses=["rep@seller.example"],
        )
        (mailbox,) = (await api.get("/api/v1/mailboxes")).json()["items"]
        renamed = await api.patch(f"/api/v1/mailboxes/{mailbox['id']}", json={"name": "Old mail"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Old mail"
        assert renamed.json()["imap"]["auth_method"] == "none"

        imap = imap_user.mailbox_body()["imap"]
        connected = await api.patch(f"/api/v1/mailboxes/{mailbox['id']}", json={"imap": imap})
        assert connected.status_code == 200, connected.text
        assert connected.json()["imap"]["auth_method"] == "password"
        synced = await api.post(f"/api/v1/mailboxes/{mailbox['id']}/sync", params={"wait": "true"})
        assert synced.status_code == 200, synced.text


async def test_non_ascii_credentials_log_in_with_sasl_plain(
    ctx: Context, imap_user: ImapUser
) -> None:
    """LOGIN carries ASCII only: a password such as "Grüße" used to be a 500 (found by the
    fuzz run with a non-ASCII username). It now goes through AUTHENTICATE PLAIN (UTF-8)."""
    server = imap_user.server
    server.add_user(imap_user.username, "Grüße-Passwört-€")
    async with await api_client(ctx, "rep@seller.example") as api:
        body = imap_user.mailbox_body()
        body["imap"] = {**body["imap"], "password": "Grüße-Passwört-€"}  # type: ignore[dict-item]
        created = await api.post("/api/v1/mailboxes", json=body)
        assert created.status_code == 201, created.text
        path = f"/api/v1/mailboxes/{created.json()['id']}"
        synced = await api.post(f"{path}/sync", params={"wait": "true"})
        assert synced.status_code == 200, synced.text

        refused = await api.patch(path, json={"imap": {"username": "³-nobody"}})
        assert refused.status_code == 422, refused.text
        assert "refused the login for ³-nobody" in refused.json()["detail"]
