"""Per-mailbox question templates over the API: checked at save, used for new drafts."""

from __future__ import annotations

import pytest

from app.services import sync as sync_service
from app.services.context import Context
from tests.factories import ImapUser, connect, now_utc, populate
from tests.support.api import api_client, only_draft

pytestmark = pytest.mark.integration


async def test_templates_are_checked_at_save_and_used_for_new_drafts(
    ctx: Context, imap_user: ImapUser
) -> None:
    populate(imap_user, now_utc())
    _, mailbox_id = await connect(ctx, imap_user)
    path = f"/api/v1/mailboxes/{mailbox_id}/draft-templates"
    async with await api_client(ctx, "owner@seller.example", create_user=False) as api:
        shown = await api.get(path)
        assert shown.status_code == 200
        stages = shown.json()["stages"]
        assert set(stages) == {"first", "middle", "last"}
        assert all(not s["custom"] and len(s["templates"]) >= 3 for s in stages.values())
        assert "first_name" in shown.json()["variables"]

        for body, complaint in [
            (
                {"first": ["Fine.", "Line one\n{{ frist_name }}?"]},
                "first[1], line 2: unknown variable",
            ),
            ({"middle": ["Hi\n{{ company | }}"]}, "middle[0], line 2: syntax error"),
            ({"last": ["{{ company.__class__ }}"]}, "unsafe"),
            ({"first": []}, "at least one"),
        ]:
            refused = await api.put(path, json=body)
            assert refused.status_code == 422, refused.text
            assert complaint in refused.json()["detail"], refused.json()["detail"]
        assert (await api.get(path)).json() == shown.json()  # nothing was saved
        unknown_stage = await api.put(path, json={"fourth": ["Hi?"]})
        assert unknown_stage.status_code == 422

        saved = await api.put(
            path,
            json={"first": ["{{ first_name or 'Hey' }} — worth a second look at {{ company }}?"]},
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["stages"]["first"] == {
            "templates": ["{{ first_name or 'Hey' }} — worth a second look at {{ company }}?"],
            "custom": True,
        }
        assert saved.json()["stages"]["last"]["custom"] is False

        await sync_service.sync_mailbox(ctx, mailbox_id)
        draft = await only_draft(api)
        assert draft["question"] == "Anna — worth a second look at Buyer?"

        back = await api.put(path, json={"first": None})
        assert back.json()["stages"]["first"]["custom"] is False
