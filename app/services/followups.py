"""Compose the follow-up drafts that are due: one per quiet thread and step, never two.

Called right after the rules ran (by a sync, an import and the scheduler). The rep's last
e-mail comes whole from `services.originals`: fetched over IMAP only now (BODY.PEEK[]: it
stays unread), or the copy an import kept; only the composed draft is stored. A mail server
that cannot be reached leaves the drafts for the next pass.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from email.message import Message
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import metrics
from app.domain.events import SCHEMA_VERSION, EventType
from app.domain.followup import (
    NothingToForward,
    StoredMessage,
    forward_reason,
    last_outbound,
    plan_followup,
    unanswered_run,
    weigh_forward,
)
from app.domain.model import Address, Identity, MessageKind, Rules
from app.domain.threads import is_synthetic_key
from app.domain.worktime import WorkCalendar
from app.drafts.message import (
    compose,
    draft_text,
    forward_parts,
    new_message_id,
    read_original,
    text_and_attachments,
    to_bytes,
)
from app.drafts.render import (
    QuestionTemplates,
    TemplateProblem,
    load_defaults,
    render_question,
    with_overrides,
)
from app.errors import MailServerError, RateLimited
from app.services.context import Context
from app.services.evaluation import calendar_of, rules_of
from app.services.originals import OriginalSource, open_originals
from app.services.views import iso
from app.storage import drafts as store
from app.storage import mailboxes as mailbox_store
from app.storage import outbox
from app.storage import threads as thread_store
from app.storage.drafts import DraftRow, DraftSettings, DueThread, ListedDraft, NewDraft
from app.storage.engine import reading
from app.storage.threads import MessageRow

log = logging.getLogger(__name__)
COMPOSE_BATCH = 50  # drafts per mailbox and pass; the rest come with the next pass
FORWARD_CANDIDATES = 5  # of the rep's unanswered e-mails, newest first, read to find substance
AUTO_DISMISSED = "auto: the thread stopped waiting for this follow-up before it was approved"
DEFAULT_SETTINGS = DraftSettings()  # a mailbox that never saved its own


def settings_of(row: DraftSettings | None) -> DraftSettings:
    return row or DEFAULT_SETTINGS


def templates_of(settings: DraftSettings) -> QuestionTemplates:
    return with_overrides(load_defaults(), settings.templates)


def effective_state(row: ListedDraft, now: datetime) -> str:
    """A snoozed draft whose time has come is pending again."""
    if row.state == "snoozed" and row.snoozed_until and row.snoozed_until <= now:
        return "pending"
    return row.state


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftView:
    """A draft as the API and the events show it (the message itself via /raw)."""

    id: int
    thread_id: int
    mailbox_id: int
    step: int
    state: str
    question: str
    body: str | None
    subject: str
    from_: str  # "from" in JSON
    to: list[str]
    cc: list[str]
    message_id: str
    in_reply_to: str | None
    reason: str | None
    skipped_attachments: list[str]
    revision: int
    dismiss_reason: str | None
    snoozed_until: str | None
    delivery: str | None
    imap_folder: str | None
    imap_uid: int | None
    approved_at: str | None
    sent_at: str | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftDetailView(DraftView):
    text: str  # the text part: the question, then the forwarded e-mail


def draft_view(row: ListedDraft, now: datetime) -> DraftView:
    return DraftView(
        id=row.id,
        thread_id=row.thread_id,
        mailbox_id=row.mailbox_id,
        step=row.step,
        state=effective_state(row, now),
        question=row.question,
        body=row.body,
        subject=row.subject,
        from_=row.from_addr,
        to=row.to_addrs,
        cc=row.cc_addrs,
        message_id=row.message_id,
        # The stand-in key of an e-mail without Message-ID is no In-Reply-To: none then.
        in_reply_to=None
        if is_synthetic_key(row.forwarded_message_id)
        else row.forwarded_message_id,
        reason=row.reason,
        skipped_attachments=row.skipped_attachments,
        revision=row.revision,
        dismiss_reason=row.dismiss_reason,
        snoozed_until=iso(row.snoozed_until),
        delivery=row.delivery,
        imap_folder=row.imap_folder,
        imap_uid=row.imap_uid,
        approved_at=iso(row.approved_at),
        sent_at=iso(row.sent_at),
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
    )


def draft_detail(row: DraftRow, now: datetime) -> DraftDetailView:
    view = draft_view(row, now)
    shown = {f.name: getattr(view, f.name) for f in fields(view)}  # every DraftView field
    return DraftDetailView(**shown, text=draft_text(row.raw))


def draft_payload(row: ListedDraft, now: datetime) -> dict[str, Any]:
    """The `draft.*` events' body: JSON, keys in the order of `DraftView` as the API's."""
    draft = {("from" if k == "from_" else k): v for k, v in asdict(draft_view(row, now)).items()}
    return {"schema_version": SCHEMA_VERSION, "draft": draft}


async def announce(
    conn: AsyncConnection, row: ListedDraft, event: EventType, now: datetime
) -> None:
    """A draft's event into the outbox, in the caller's transaction."""
    await outbox.enqueue(
        conn,
        user_id=row.user_id,
        type=event.value,
        payload=draft_payload(row, now),
        now=now,
        mailbox_id=row.mailbox_id,
        thread_id=row.thread_id,
    )


async def create_due_drafts_everywhere(ctx: Context, *, limit: int = 20) -> int:
    """The scheduler's pass: every mailbox with a quiet thread that lacks its draft."""
    async with reading(ctx.engine) as conn:
        mailbox_ids = await store.mailboxes_needing_drafts(conn, limit=limit)
    created = 0
    for mailbox_id in mailbox_ids:
        created += await create_due_drafts(ctx, mailbox_id)
    return created


async def create_due_drafts(ctx: Context, mailbox_id: int, *, all_due: bool = False) -> int:
    """Compose a draft for the quiet threads of the mailbox without one for their due step,
    newest quiet first (COMPOSE_BATCH of them; with `all_due`, every one), each with its
    `draft.created` event, and record how many still wait (the mailbox's `drafts_preparing`).
    Returns how many were made; never raises for a mail server that cannot be reached (the
    next pass tries again)."""
    try:
        async with ctx.engine.begin() as conn:
            retired = await store.retire_stale_drafts(
                conn, mailbox_id=mailbox_id, reason=AUTO_DISMISSED, now=ctx.clock()
            )
        if retired:
            log.info("drafts.retired mailbox=%s count=%s", mailbox_id, retired)
        created = 0
        page: tuple[datetime, int] | None = None
        while True:
            made, page = await _create(ctx, mailbox_id, page)
            created += made
            if page is None or not all_due:
                break
    except MailServerError as exc:
        log.warning("drafts.compose_failed mailbox=%s error=%s", mailbox_id, exc.message)
        created = 0
    await _record_backlog(ctx, mailbox_id)
    if created:
        metrics.DRAFTS_CREATED.inc(created)
        log.info("drafts.created mailbox=%s count=%s", mailbox_id, created)
    return created


async def _record_backlog(ctx: Context, mailbox_id: int) -> None:
    """How many quiet threads still wait for their draft, shown on the mailbox."""
    async with ctx.engine.begin() as conn:
        waiting = await store.count_quiet_without_draft(conn, mailbox_id)
        await mailbox_store.set_drafts_preparing(conn, mailbox_id, waiting)


# Opening a quiet thread's draft composes it then if it is missing, waiting this long for it
# (fetching the original from IMAP); past that the answer says it is being prepared and to
# ask again after PREPARING_RETRY_SECONDS, while the composition goes on.
ON_DEMAND_SECONDS = 8.0
PREPARING_RETRY_SECONDS = 5
_on_demand: dict[int, asyncio.Task[int]] = {}  # thread id -> its composition in this process


@dataclass(frozen=True, kw_only=True)
class DraftWait:
    """What a quiet thread's missing draft waits for: nothing (it has its draft or needs
    none), its composition (`preparing`: ask again), or a mailbox that cannot be read now
    (`blocked`, in plain words: asking again will not help until the rep acts)."""

    preparing: bool = False
    blocked: str | None = None


READY = DraftWait()
PREPARING = DraftWait(preparing=True)


def _blocked(mailbox: mailbox_store.MailboxRow) -> DraftWait:
    said = (mailbox["status_message"] or "").strip()
    return DraftWait(
        blocked=f"the mailbox {mailbox['name']} cannot be read now"
        + (f" ({said})" if said else "")
        + ": its follow-up drafts are made once it can be read again"
    )


async def draft_on_demand(ctx: Context, *, user_id: int, thread_id: int) -> DraftWait:
    """Compose the user's quiet thread's draft now when it has none for its due step, and
    say what it still waits for afterwards."""
    async with reading(ctx.engine) as conn:
        thread = await thread_store.get_thread(conn, thread_id, user_id=user_id)
        if thread is None or thread.state != "quiet":
            return READY
        if not await store.quiet_threads_without_draft(
            conn, mailbox_id=thread.mailbox_id, thread_id=thread_id, limit=1
        ):
            return READY
        mailbox = await mailbox_store.get_mailbox(conn, thread.mailbox_id)
    if mailbox is None:
        return READY
    if mailbox["status"] == "failed":  # composing needs the original, read over IMAP
        return _blocked(mailbox)
    task = _on_demand.get(thread_id)
    if task is None:
        try:
            ctx.mail_slots.take(user_id)  # composing reads the original over IMAP
        except RateLimited:
            return PREPARING  # the user's other mail work comes first; a background pass makes it
        task = asyncio.create_task(_compose_thread(ctx, thread.mailbox_id, thread_id, user_id))
        _on_demand[thread_id] = task
        task.add_done_callback(functools.partial(_composed, thread_id))
    try:
        async with asyncio.timeout(ON_DEMAND_SECONDS):
            await asyncio.shield(task)
    except TimeoutError:
        return PREPARING
    except Exception:  # logged by the composition; the background pass tries again
        return PREPARING
    async with reading(ctx.engine) as conn:
        missing = await store.quiet_threads_without_draft(
            conn, mailbox_id=thread.mailbox_id, thread_id=thread_id, limit=1
        )
        mailbox = await mailbox_store.get_mailbox(conn, thread.mailbox_id)
    if not missing:
        return READY
    # The login failed while composing (the sync records that on the mailbox).
    return _blocked(mailbox) if mailbox and mailbox["status"] == "failed" else PREPARING


def _composed(thread_id: int, task: asyncio.Task[int]) -> None:
    _on_demand.pop(thread_id, None)
    if not task.cancelled() and (error := task.exception()) is not None:
        # Nobody may be waiting for it any more (the answer said "preparing"): log it here.
        log.error("drafts.compose_error thread=%s", thread_id, exc_info=error)


async def _compose_thread(ctx: Context, mailbox_id: int, thread_id: int, user_id: int) -> int:
    try:
        made, _ = await _create(ctx, mailbox_id, None, thread_id=thread_id)
    except MailServerError as exc:
        log.warning("drafts.compose_failed thread=%s error=%s", thread_id, exc.message)
        return 0
    finally:
        ctx.mail_slots.release(user_id)
    if made:
        metrics.DRAFTS_CREATED.inc(made)
        await _record_backlog(ctx, mailbox_id)
    return made


@dataclass(frozen=True, kw_only=True)
class _MailboxFacts:
    """What every draft of one mailbox's pass is composed with: read and built once."""

    mailbox: mailbox_store.MailboxRow
    identity: Identity
    rules: Rules
    calendar: WorkCalendar
    templates: QuestionTemplates
    settings: DraftSettings


async def _create(
    ctx: Context,
    mailbox_id: int,
    after: tuple[datetime, int] | None,
    *,
    thread_id: int | None = None,
) -> tuple[int, tuple[datetime, int] | None]:
    """The drafts of one page of due threads (newest quiet first, after `after`; or the one
    thread `thread_id`): how many were made, and where the next page starts (None: this was
    the last)."""
    async with reading(ctx.engine) as conn:
        mailbox = await mailbox_store.get_mailbox(conn, mailbox_id)
        if mailbox is None or mailbox["status"] == "failed":
            # Failed: the sync retries the login on its own schedule; more attempts here
            # could lock the account.
            return 0, None
        due = await store.quiet_threads_without_draft(
            conn, mailbox_id=mailbox_id, after=after, thread_id=thread_id, limit=COMPOSE_BATCH
        )
        if not due:
            return 0, None
        settings = settings_of(await store.get_settings(conn, mailbox_id))
        messages = await thread_store.messages_of_threads(conn, [t.id for t in due])
        candidates = {t.id: _forward_candidates(messages[t.id]) for t in due}
    last = due[-1]
    next_page = (last.last_outbound_at, last.id) if len(due) == COMPOSE_BATCH else None
    templates = _usable_templates(settings, mailbox_id)
    if templates is None:
        return 0, None
    rules = rules_of(mailbox)
    facts = _MailboxFacts(
        mailbox=mailbox,
        identity=Identity.from_addresses(mailbox["addresses"]),
        rules=rules,
        calendar=calendar_of(mailbox, ctx.clock(), rules),
        templates=templates,
        settings=settings,
    )
    source = await open_originals(
        ctx, mailbox, [row.id for rows in candidates.values() for row in rows]
    )
    created = 0
    try:
        for thread in due:
            try:
                created += await _compose_one(
                    ctx, source, facts, thread, messages[thread.id], candidates[thread.id]
                )
            except MailServerError:
                raise  # the connection is gone: the next pass tries again
            except Exception:  # one odd e-mail must not stop the drafts of the others
                log.exception("drafts.compose_error thread=%s", thread.id)
    finally:
        await source.close()
    return created, next_page


def _forward_candidates(rows: list[MessageRow]) -> list[MessageRow]:
    """The message rows a follow-up of the thread may forward: the rep's e-mails since the
    last answer, newest first (`unanswered_run`), with or without a Message-ID."""
    by_key = {r.message_key: r for r in rows}
    run = unanswered_run([stored_message(r) for r in rows])
    return [by_key[m.key] for m in run[:FORWARD_CANDIDATES]]


def _weighed(raw: bytes) -> tuple[Message, str, bool]:
    """The rep's e-mail parsed, with what weighing it as a forward reads of it."""
    original = read_original(raw)
    return (original, *text_and_attachments(original))


async def _compose_one(
    ctx: Context,
    source: OriginalSource,
    facts: _MailboxFacts,
    thread: DueThread,
    rows: list[MessageRow],
    candidates: list[MessageRow],
) -> int:
    """The draft of one due thread, from its message `rows` (oldest first); `candidates` are
    the rep's unanswered e-mails, newest first, read whole from `source` one by one until
    one carries substance: that one is forwarded."""
    mailbox, settings = facts.mailbox, facts.settings
    step = thread.followups_sent + 1
    stored = [stored_message(r) for r in rows]
    run = unanswered_run(stored)
    latest = last_outbound(stored)
    first: tuple[StoredMessage, Message] | None = None
    chosen: tuple[StoredMessage, Message] | None = None
    bumps, verdict = 0, "bump"
    for message, candidate in zip(run, candidates, strict=False):
        raw = await source.original(candidate.id)
        if raw is None:
            continue
        # Parsing an e-mail of up to draft_original_max_bytes takes a while: off the event
        # loop, which answers every other rep meanwhile.
        original, text, attached = await asyncio.to_thread(_weighed, raw)
        first = first or (message, original)
        verdict = weigh_forward(text, has_attachment=attached)
        if verdict != "bump":
            chosen = (message, original)
            break
        bumps += 1
    if first is None or latest is None:
        log.info("drafts.original_missing thread=%s", thread.id)
        return 0
    forward, original = chosen or first  # every one a bare bump: the newest, as it is
    why = forward_reason(
        forward,
        latest,
        calendar=facts.calendar,
        bumps_passed=bumps,
        quotes_original=verdict == "quoting_bump",
        all_bumps=chosen is None,
    )
    now = ctx.clock()
    parts = await asyncio.to_thread(
        forward_parts,
        original,
        attachments=settings.attach_originals,
        max_attachment_bytes=settings.attachment_max_bytes,
        now=now,
        seed=str(thread.id),
    )
    try:
        plan = plan_followup(
            thread_id=thread.id,
            step=step,
            messages=stored,
            identity=facts.identity,
            rules=facts.rules,
            calendar=facts.calendar,
            now=now,
            names=parts.recipient_names,
            forward=forward,
            why=why,
        )
    except NothingToForward:
        return 0
    question = render_question(
        facts.templates, stage=plan.stage, thread_id=thread.id, variables=plan.variables
    )
    message_id = new_message_id(plan.from_.email)
    raw = await asyncio.to_thread(
        lambda: to_bytes(compose(plan, question, parts, message_id=message_id, date=now))
    )
    async with ctx.engine.begin() as conn:
        if not await store.thread_is_due(conn, thread.id, step):
            return 0  # a reply came in while we composed
        row = await store.insert_draft(
            conn,
            NewDraft(
                user_id=mailbox["user_id"],
                mailbox_id=mailbox["id"],
                thread_id=thread.id,
                step=step,
                state="pending",
                question=question,
                raw=raw,
                message_id=message_id,
                forwarded_message_id=plan.answers.ident,
                reason=plan.forward_reason,
                subject=plan.subject,
                from_addr=plan.from_.email,
                to_addrs=[a.email for a in plan.to],
                cc_addrs=[a.email for a in plan.cc],
                skipped_attachments=list(parts.skipped_attachments),
            ),
            now=now,
        )
        if row is None:
            return 0  # another worker made it first
        await announce(conn, row, EventType.DRAFT_CREATED, now)
    return 1


def _usable_templates(settings: DraftSettings, mailbox_id: int) -> QuestionTemplates | None:
    """The mailbox's templates: the defaults, with its own variants where it has some (those
    were checked when saved). None, and an error in the log, when the default templates
    cannot be found, read or pass their checks."""
    try:
        return templates_of(settings)
    except (TemplateProblem, OSError) as exc:
        log.error("drafts.no_templates mailbox=%s error=%s", mailbox_id, exc)
        return None


def stored_message(row: MessageRow) -> StoredMessage:
    return StoredMessage(
        message_id=row.message_key if row.has_message_id else None,
        kind=MessageKind(row.kind),
        date=row.date,
        subject=row.subject,
        sender=Address(email=row.from_addr, name=row.from_name),
        to=tuple(Address(email=a) for a in row.to_addrs),
        cc=tuple(Address(email=a) for a in row.cc_addrs),
        references=tuple(row.references),
        in_reply_to=tuple(row.in_reply_to),
        key=row.message_key,
    )
