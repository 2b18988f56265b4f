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
    async with reading(ctx.engine) as conn:
        user_id = None
        if email is not None:
            user = await user_store.get_user_by_email(conn, normalize_email(email))
            if user is None:
                raise NotFound(f"no user with e-mail {normalize_email(email)}")
            user_id = int(user["id"])
        if ref.isdigit() and await mailbox_store.get_mailbox(conn, int(ref), user_id=user_id):
            return int(ref)
        matches = await mailbox_store.find_mailboxes_by_name(conn, ref, user_id=user_id)
    if not matches:
        raise NotFound(f"no mailbox with id or name {ref!r}")
    if len(matches) > 1:
        ids = ", ".join(str(m["id"]) for m in matches)
        raise InvalidInput(
            f"several mailboxes are named {ref!r} (ids {ids}): give the id, or the owner's --email"
        )
    return int(matches[0]["id"])
