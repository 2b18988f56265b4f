"""PATCH /api/v1/mailboxes/{id}: a field left out keeps its value; a null is refused where the
mailbox cannot do without the field (found by the OpenAPI fuzz run: it used to be a 500)."""

from __future__ import annotations

import pytest

from app.services.context import Context
from tests.integration.conftest import ImapUser
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
