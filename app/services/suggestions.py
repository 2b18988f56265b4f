"""The other questions a rep may pick for a draft: every variant of its stage, rendered for
its thread as the composer would."""

from __future__ import annotations

from app.domain.followup import NothingToForward, plan_followup
from app.domain.model import Identity
from app.drafts.render import TemplateProblem, render_variants
from app.errors import NotFound
from app.services.context import Context
from app.services.evaluation import calendar_of, rules_of
from app.services.followups import settings_of, stored_message, templates_of
from app.storage import drafts as store
from app.storage import mailboxes as mailbox_store
from app.storage import threads as thread_store
from app.storage.engine import reading


async def suggested_questions(ctx: Context, *, user_id: int, draft_id: int) -> list[str]:
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        draft = await store.get_draft(conn, draft_id, user_id=user_id)
        if draft is None:
            raise NotFound(f"no draft {draft_id}")
        mailbox = await mailbox_store.get_mailbox(conn, draft.mailbox_id, user_id=user_id)
        settings = settings_of(await store.get_settings(conn, draft.mailbox_id))
        rows = (await thread_store.messages_of_threads(conn, [draft.thread_id]))[draft.thread_id]
    if mailbox is None:
        raise NotFound(f"no draft {draft_id}")
    rules = rules_of(mailbox)
    try:
        plan = plan_followup(
            thread_id=draft.thread_id,
            step=draft.step,
            messages=[stored_message(r) for r in rows],
            identity=Identity.from_addresses(mailbox["addresses"]),
            rules=rules,
            calendar=calendar_of(mailbox, now, rules),
            now=now,
        )
        questions = render_variants(
            templates_of(settings), stage=plan.stage, variables=plan.variables
        )
    except (NothingToForward, TemplateProblem, OSError):
        return []
    return [q for q in questions if q != draft.question]
