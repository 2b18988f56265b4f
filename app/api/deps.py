"""FastAPI dependencies: the service context and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import AuthError
from app.services.accounts import CurrentUser, authenticate
from app.services.context import Context
from app.services.paging import MAX_ROW_ID

MAX_ID = MAX_ROW_ID  # ids are BIGINT: a larger number is a 422, not a database error
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id")]

_bearer = HTTPBearer(auto_error=False, description="An API token from `radiosilence token create`")


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def get_user(
    ctx: Annotated[Context, Depends(get_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError()
    return await authenticate(ctx, credentials.credentials)


ContextDep = Annotated[Context, Depends(get_context)]
UserDep = Annotated[CurrentUser, Depends(get_user)]
