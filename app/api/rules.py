"""/api/v1/mailboxes/{id}/rules: when a thread is quiet, paused or closed, per mailbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ContextDep, RowId, UserDep
from app.api.schemas import Problem, RulesPreview
from app.services import rules as service
from app.services.rules_schema import RulesBody

router = APIRouter(prefix="/mailboxes", tags=["rules"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}


@router.get("/{mailbox_id}/rules", response_model=RulesBody, responses=ERRORS)
async def get_rules(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    """The mailbox's rules, defaults filled in."""
    return await service.get_rules(ctx, user_id=user.id, mailbox_id=mailbox_id)


@router.put("/{mailbox_id}/rules", response_model=RulesBody, responses=ERRORS)
async def put_rules(
    mailbox_id: RowId, body: RulesBody, ctx: ContextDep, user: UserDep
) -> dict[str, Any]:
    """Replace the rules (a field left out takes its default). Every thread of the mailbox
    is evaluated again by the scheduler under the new rules."""
    return await service.put_rules(
        ctx, user_id=user.id, mailbox_id=mailbox_id, data=body.model_dump(mode="json")
    )


@router.post("/{mailbox_id}/rules/preview", response_model=RulesPreview, responses=ERRORS)
async def preview_rules(
    mailbox_id: RowId, body: RulesBody, ctx: ContextDep, user: UserDep
) -> dict[str, Any]:
    """Which threads would change state if these were the rules now. Nothing is saved."""
    return await service.preview_rules(
        ctx, user_id=user.id, mailbox_id=mailbox_id, data=body.model_dump(mode="json")
    )
