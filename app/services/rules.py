"""A mailbox's rules: read, replace (the threads are then looked at again), and preview."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import Rules
from app.domain.rules import decide
from app.domain.ruleset import rules_to_dict
from app.errors import NotFound
from app.services.context import Context
from app.services.evaluation import calendar_of, rules_of, thread_pages
from app.storage import mailboxes as mailbox_store
from app.storage import threads as store
from app.storage.engine import reading
from app.storage.mailboxes import MailboxChanges, MailboxRow
from app.storage.threads import history_of

PREVIEW_ITEMS = 200  # changes listed in a preview; the counts cover every thread


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewItem:
    """A thread whose state (or needs_response) the proposed rules would change."""

    thread_id: int
    subject: str
    state: str
    reason: str
    needs_response: bool
    new_state: str
    new_reason: str
    new_needs_response: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesPreview:
    threads_evaluated: int
    threads_changing: int
    items: list[PreviewItem]  # the first PREVIEW_ITEMS changes, by thread id
    truncated: bool


async def get_rules(ctx: Context, *, user_id: int, mailbox_id: int) -> Rules:
    async with reading(ctx.engine) as conn:
        mailbox = await _mailbox(conn, user_id, mailbox_id)
    return rules_of(mailbox)


async def put_rules(ctx: Context, *, user_id: int, mailbox_id: int, rules: Rules) -> Rules:
    """Replace the rules; every thread of the mailbox is marked for the scheduler, in the
    same transaction, so no thread keeps a state the old rules gave it."""
    async with ctx.engine.begin() as conn:
        await _mailbox(conn, user_id, mailbox_id)
        changes = MailboxChanges(rules=rules_to_dict(rules))
        await mailbox_store.update_mailbox(conn, mailbox_id, changes, now=ctx.clock())
        await store.mark_mailbox_dirty(conn, mailbox_id)
    return rules


async def preview_rules(
    ctx: Context, *, user_id: int, mailbox_id: int, rules: Rules
) -> RulesPreview:
    """Which threads would change state (or needs_response) if `rules` were the rules now,
    compared with the saved rules at the same moment. Nothing is written."""
    now = ctx.clock()
    items: list[PreviewItem] = []
    evaluated = changing = 0
    async with reading(ctx.engine) as conn:
        mailbox = await _mailbox(conn, user_id, mailbox_id)
        current = rules_of(mailbox)
        cal_now, cal_new = calendar_of(mailbox, now, current), calendar_of(mailbox, now, rules)
        async for page, messages in thread_pages(conn, mailbox_id):
            for thread in page:
                if thread.state is None:  # not decided yet: nothing would change
                    continue
                history = history_of(thread, messages.get(thread.id, []))
                old = decide(history, current, cal_now, now)
                new = decide(history, rules, cal_new, now)
                evaluated += 1
                if (old.state, old.needs_response) == (new.state, new.needs_response):
                    continue
                changing += 1
                if len(items) < PREVIEW_ITEMS:
                    items.append(
                        PreviewItem(
                            thread_id=thread.id,
                            subject=thread.subject,
                            state=old.state.value,
                            reason=old.reason,
                            needs_response=old.needs_response,
                            new_state=new.state.value,
                            new_reason=new.reason,
                            new_needs_response=new.needs_response,
                        )
                    )
    return RulesPreview(
        threads_evaluated=evaluated,
        threads_changing=changing,
        items=items,
        truncated=changing > len(items),
    )


async def _mailbox(conn: AsyncConnection, user_id: int, mailbox_id: int) -> MailboxRow:
    row = await mailbox_store.get_mailbox(conn, mailbox_id, user_id=user_id)
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return row
