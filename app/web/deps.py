"""What every page needs: the signed-in user (or a redirect to /login) and a checked form."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.datastructures import FormData

from app.errors import InvalidInput
from app.services import accounts
from app.services.accounts import CurrentUser
from app.services.context import Context
from app.services.paging import MAX_ROW_ID
from app.web import sessions


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A POST without a valid csrf_token: 403."""


class NotAllowed(Exception):
    """A page for administrators only: answered as 404, as if it did not exist."""


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def current_user(request: Request) -> CurrentUser:
    token = sessions.session_token(request)
    user = await accounts.session_user(get_context(request), token) if token else None
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(quote(target, safe="/?=&"))
    request.state.user = user
    return user


async def admin_user(user: Annotated[CurrentUser, Depends(current_user)]) -> CurrentUser:
    if not user.is_admin:
        raise NotAllowed()
    return user


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its csrf_token proved it came from one of our pages."""
    form = await request.form(max_files=0, max_fields=200, max_part_size=256 * 1024)
    if not sessions.csrf_valid(request, form.get(sessions.CSRF_FIELD)):
        raise CsrfRejected()
    return form


PageUser = Annotated[CurrentUser, Depends(current_user)]
AdminUser = Annotated[CurrentUser, Depends(admin_user)]
Form = Annotated[FormData, Depends(checked_form)]
Ctx = Annotated[Context, Depends(get_context)]


def row_id(value: int) -> int:
    """An id from a page's path; beyond BIGINT it is an error page, never a database error."""
    if not 0 < value <= MAX_ROW_ID:
        raise InvalidInput("not an id")
    return value


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value if isinstance(value, str) else default
