"""Text that no column can hold gets a 422 naming the field, on both databases.

PostgreSQL refuses NUL characters in text (SQLite stores them), and a lone surrogate escape
("\\ud800") cannot be encoded at all: both used to reach the database and answer 500.
"""

from __future__ import annotations

import json

import pytest

from app.services.context import Context
from tests.factories import ImapUser, now_utc, populate
from tests.support.api import api_client

pytestmark = pytest.mark.integration
LONE_SURROGATE = "a\\ud800b"  # as it arrives in JSON, escaped


async def test_nul_and_lone_surrogates_are_refused_with_the_field_named(
    ctx: Context, imap_user: ImapUser
) -> None:
    populate(imap_user, now_utc())
    async with await api_client(ctx, "rep@seller.example") as api:
        mailbox_id = (await api.post("/api/v1/mailboxes", json=imap_user.mailbox_body())).json()[
            "id"
        ]
        synced = await api.post(f"/api/v1/mailboxes/{mailbox_id}/sync", params={"wait": "true"})
        assert synced.status_code == 200, synced.text
        thread = (await api.get("/api/v1/threads")).json()["items"][0]
        draft = (await api.get("/api/v1/drafts")).json()["items"][0]

        cases = [
            ("POST", f"/api/v1/threads/{thread['id']}/close", '{"reason": "%s"}', "reason"),
            ("POST", f"/api/v1/threads/{thread['id']}/answered", '{"note": "%s"}', "note"),
            ("POST", f"/api/v1/drafts/{draft['id']}/dismiss", '{"reason": "%s"}', "reason"),
            ("PATCH", f"/api/v1/mailboxes/{mailbox_id}", '{"name": "%s"}', "name"),
            (
                "PATCH",
                f"/api/v1/mailboxes/{mailbox_id}",
                '{"folders": {"include": ["x", "%s"]}}',
                "folders.include[1]",
            ),
            (
                "POST",
                "/api/v1/webhooks",
                '{"url": "https://a.example/", "description": "%s"}',
                "description",
            ),
        ]
        for method, path, template, field in cases:
            for bad, says in (("a\\u0000b", "NUL characters"), (LONE_SURROGATE, "lone surrogate")):
                body = template.replace("%s", bad)
                json.loads(body)  # well-formed JSON: only the text inside is bad
                answer = await api.request(
                    method, path, content=body, headers={"Content-Type": "application/json"}
                )
                assert answer.status_code == 422, (path, body, answer.text)
                assert f"text in {field}" in answer.json()["detail"], answer.text
                assert says in answer.json()["detail"], answer.text

        # Nothing was changed by the refused requests.
        after = (await api.get(f"/api/v1/threads/{thread['id']}")).json()
        assert after["state"] == thread["state"] and after["reason"] == thread["reason"]
        assert (await api.get(f"/api/v1/mailboxes/{mailbox_id}")).json()["name"] == "Work"
        assert (await api.get("/api/v1/webhooks")).json()["items"] == []
