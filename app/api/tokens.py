"""/api/v1/tokens: the signed-in user's API tokens; revoking one takes effect at once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from app.api.deps import ContextDep, RowId, UserDep
from app.api.schemas import Problem, TokenCreate, TokenCreated, TokenList, TokenOut
from app.services import accounts
from app.services.views import iso

router = APIRouter(prefix="/tokens", tags=["tokens"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}


def token_view(row: accounts.TokenRow) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=iso(row.created_at) or "",
        last_used_at=iso(row.last_used_at),
        expires_at=iso(row.expires_at),
    )


@router.get("", response_model=TokenList, responses=ERRORS)
async def list_tokens(ctx: ContextDep, user: UserDep) -> TokenList:
    """Your API tokens (never the tokens themselves: only their first characters)."""
    rows = await accounts.list_tokens(ctx, user_id=user.id)
    return TokenList(items=[token_view(r) for r in rows])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated, responses=ERRORS)
async def create_token(body: TokenCreate, ctx: ContextDep, user: UserDep) -> TokenCreated:
    """A new token, shown this once."""
    token = await accounts.create_token_for(
        ctx, user_id=user.id, name=body.name, expires_at=body.expires_at
    )
    return TokenCreated(token=token)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def revoke_token(token_id: RowId, ctx: ContextDep, user: UserDep) -> Response:
    """Revoke the token: its next request is refused (401)."""
    await accounts.revoke_token(ctx, user_id=user.id, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
