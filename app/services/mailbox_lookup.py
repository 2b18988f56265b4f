"""A mailbox found from what an operator types on the command line: its id, or its name,
looked up among one user's mailboxes when the owner's e-mail is given."""

from __future__ import annotations

from app.errors import InvalidInput, NotFound
from app.services.accounts import normalize_email
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import users as user_store
from app.storage.engine import reading


async def resolve_mailbox(ctx: Context, ref: str, *, email: str | None = None) -> int:
    """The id of the mailbox `ref` names. With `email`, only that user's mailboxes count, so
    two users may both have a "Work"; without it, a name must be unique among everyone's."""
    owner = normalize_email(email) if email is not None else None
    async with reading(ctx.engine) as conn:
        if owner is not None and await user_store.get_user_by_email(conn, owner) is None:
            raise NotFound(f"no user with e-mail {owner}")
        if ref.isdigit() and await mailbox_store.find_mailbox_ids(
            conn, mailbox_id=int(ref), owner_email=owner
        ):
            return int(ref)
        matches = await mailbox_store.find_mailbox_ids(conn, name=ref, owner_email=owner)
    if not matches:
        raise NotFound(f"no mailbox with id or name {ref!r}")
    if len(matches) > 1:
        ids = ", ".join(map(str, matches))
        raise InvalidInput(
            f"several mailboxes are named {ref!r} (ids {ids}): give the id, or the owner's --email"
        )
    return matches[0]
