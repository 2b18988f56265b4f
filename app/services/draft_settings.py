"""A mailbox's draft settings: its question templates (checked when saved) and how its
drafts are delivered (attachments of the forwarded e-mail, SMTP with an encrypted password)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from app.domain.followup import TEMPLATE_VARIABLES
from app.drafts.render import STAGES, TemplateProblem, check_variants, load_defaults
from app.errors import ConfigError, InvalidInput, NotFound
from app.mail.imap import Security, check_security
from app.services.context import Context
from app.services.followups import settings_of
from app.services.mailhosts import checked_addresses
from app.services.text import plain_text
from app.storage import drafts as store
from app.storage import mailboxes as mailbox_store
from app.storage.drafts import DraftSettings
from app.storage.engine import reading

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # what most providers accept in one message
# Each render of a check has its own budget (render.RENDER_SECONDS); this bounds the whole
# check of one save, which runs in a thread so that the event loop never waits for it.
CHECK_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class SmtpInput:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None  # None: keep the stored one


@dataclass(frozen=True, slots=True, kw_only=True)
class StageTemplates:
    templates: list[str]
    custom: bool  # the mailbox's own variants, not the defaults


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplatesView:
    stages: dict[str, StageTemplates]
    variables: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpView:
    host: str | None
    port: int | None
    security: str | None
    username: str | None
    password_set: bool  # the password itself is never shown


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryView:
    attach_originals: bool
    attachment_max_bytes: int
    smtp: SmtpView | None  # None: SMTP sending is off


async def get_templates(ctx: Context, *, user_id: int, mailbox_id: int) -> TemplatesView:
    settings = await _settings(ctx, user_id, mailbox_id)
    try:
        defaults = load_defaults()
    except (TemplateProblem, OSError) as exc:
        raise ConfigError(f"the default question templates cannot be read: {exc}") from None
    custom = settings.templates or {}
    return TemplatesView(
        stages={
            stage: StageTemplates(
                templates=list(custom.get(stage) or defaults.variants(stage)),
                custom=bool(custom.get(stage)),
            )
            for stage in STAGES
        },
        variables=list(TEMPLATE_VARIABLES),
    )


async def put_templates(
    ctx: Context,
    *,
    user_id: int,
    mailbox_id: int,
    templates: Mapping[str, Sequence[str] | None],
) -> TemplatesView:
    """Replace the mailbox's templates; a stage given as null (or left out) uses the
    defaults. Every template is checked first: InvalidInput names the stage, variant, line."""
    settings = await _settings(ctx, user_id, mailbox_id)
    given = {stage: variants for stage, variants in templates.items() if variants is not None}

    def check() -> dict[str, list[str]]:
        return {stage: list(check_variants(stage, v)) for stage, v in given.items()}

    try:
        async with asyncio.timeout(CHECK_SECONDS):
            checked = await asyncio.to_thread(check)
    except TemplateProblem as exc:
        raise InvalidInput(f"template refused: {exc}") from None
    except TimeoutError:
        raise InvalidInput(
            f"template refused: checking it took longer than {CHECK_SECONDS:g} s"
        ) from None
    async with ctx.engine.begin() as conn:
        await store.save_settings(
            conn, mailbox_id, replace(settings, templates=checked), now=ctx.clock()
        )
    return await get_templates(ctx, user_id=user_id, mailbox_id=mailbox_id)


async def get_delivery_settings(ctx: Context, *, user_id: int, mailbox_id: int) -> DeliveryView:
    return _settings_view(await _settings(ctx, user_id, mailbox_id))


async def put_delivery_settings(
    ctx: Context,
    *,
    user_id: int,
    mailbox_id: int,
    attach_originals: bool,
    attachment_max_bytes: int,
    smtp: SmtpInput | None,
) -> DeliveryView:
    settings = await _settings(ctx, user_id, mailbox_id)
    if not 0 <= attachment_max_bytes <= MAX_ATTACHMENT_BYTES:
        raise InvalidInput(f"attachment_max_bytes must be between 0 and {MAX_ATTACHMENT_BYTES}")
    values = replace(
        settings, attach_originals=attach_originals, attachment_max_bytes=attachment_max_bytes
    )
    if smtp is None:
        off = DraftSettings()  # every smtp_ field as a mailbox that never set it up
        values = replace(
            values,
            smtp_enabled=off.smtp_enabled,
            smtp_host=off.smtp_host,
            smtp_port=off.smtp_port,
            smtp_security=off.smtp_security,
            smtp_username=off.smtp_username,
            smtp_secret_enc=off.smtp_secret_enc,
        )
    else:
        for field, value in (("host", smtp.host), ("username", smtp.username or "")):
            plain_text(value, f"smtp.{field}")
        if smtp.password is not None:
            plain_text(smtp.password, "smtp.password")
        check_security(smtp.host, smtp.security, allow_plaintext=ctx.settings.imap_allow_plaintext)
        with ctx.mail_slots.hold(user_id):  # a DNS lookup may wait
            await checked_addresses(ctx, smtp.host, smtp.port, field="smtp.host")
        secret = settings.smtp_secret_enc
        if smtp.password is not None:
            secret = ctx.box.encrypt(smtp.password)
        if smtp.username and secret is None and not await _signed_in(ctx, mailbox_id):
            raise InvalidInput("smtp.password is needed with smtp.username")
        values = replace(
            values,
            smtp_enabled=True,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security=smtp.security,
            smtp_username=smtp.username,
            smtp_secret_enc=secret if smtp.username else None,
        )
    async with ctx.engine.begin() as conn:
        await store.save_settings(conn, mailbox_id, values, now=ctx.clock())
    return _settings_view(values)


async def _signed_in(ctx: Context, mailbox_id: int) -> bool:
    """Signed in with a provider: SMTP may log in with the same grant (XOAUTH2)."""
    async with reading(ctx.engine) as conn:
        row = await mailbox_store.get_mailbox(conn, mailbox_id)
    return bool(row and row["oauth2_provider"])


async def _settings(ctx: Context, user_id: int, mailbox_id: int) -> DraftSettings:
    async with reading(ctx.engine) as conn:
        if await mailbox_store.get_mailbox(conn, mailbox_id, user_id=user_id) is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        return settings_of(await store.get_settings(conn, mailbox_id))


def _settings_view(settings: DraftSettings) -> DeliveryView:
    smtp = None
    if settings.smtp_enabled:
        smtp = SmtpView(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password_set=settings.smtp_secret_enc is not None,
        )
    return DeliveryView(
        attach_originals=settings.attach_originals,
        attachment_max_bytes=settings.attachment_max_bytes,
        smtp=smtp,
    )
