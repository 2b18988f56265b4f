"""IMAP and SMTP hosts pass the webhook URL guard (`webhooks.urlguard.UrlGuard`): resolved
once, every address checked, and only the checked addresses connected to — so that the host
field of a mailbox cannot reach the operator's own network (databases, admin ports, the cloud
metadata service) or tell a user what listens there. RADIOSILENCE_IMAP_ALLOW_PRIVATE=true
lets the operator allow private, loopback and link-local hosts."""

from __future__ import annotations

from app.errors import MailHostRefused
from app.mail.imap import check_host
from app.services.context import Context
from app.webhooks.urlguard import UrlGuard, UrlRefused

MAIL_REFUSAL = (
    "mail servers must be on public addresses (an operator can allow private ones with "
    "RADIOSILENCE_IMAP_ALLOW_PRIVATE=true)"
)


async def checked_addresses(ctx: Context, host: str, port: int, *, field: str) -> list[str]:
    """The addresses to connect to for host:port, checked before any connection is tried;
    MailHostRefused (naming `field`, e.g. "imap.host") when one is forbidden or none found;
    InvalidInput when `host` is not a host name at all."""
    check_host(host)
    try:
        found = await guard(ctx).addresses(host.rstrip(".").lower(), port)
    except UrlRefused as exc:
        raise MailHostRefused(f"{field}: {exc}") from None
    return [str(ip) for ip in found]


def guard(ctx: Context) -> UrlGuard:
    """The process's mail host guard (its short DNS cache is shared), following the setting."""
    allow = ctx.settings.imap_allow_private
    if ctx.mail_guard is None or ctx.mail_guard.allow_private != allow:
        ctx.mail_guard = UrlGuard(allow_private=allow, refusal=MAIL_REFUSAL)
    return ctx.mail_guard
