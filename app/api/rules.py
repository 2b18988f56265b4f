"""/api/v1/mailboxes/{id}/rules: when a thread is quiet, paused or closed, per mailbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ContextDep, RowId, UserDep
from app.api.schemas import Problem, RulesPreview, RulesPreviewItem
from app.services import rules as service
from app.services.rules_schema import RulesBody

router = APIRouter(prefix="/mailboxes", tags=["rules"])
# OpenAPI fragments: FastAPI's own open shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}


@router.get("/{mailbox_id}/rules", response_model=RulesBody, responses=ERRORS)
async def get_rules(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> RulesBody:
    """The mailbox's rules, defaults filled in."""
    return RulesBody.of(await service.get_rules(ctx, user_id=user.id, mailbox_id=mailbox_id))


@router.put("/{mailbox_id}/rules", response_model=RulesBody, responses=ERRORS)
async def put_rules(
    mailbox_id: RowId, body: RulesBody, ctx: ContextDep, user: UserDep
) -> RulesBody:
    """Replace the rules (a field left out takes its default). Every thread of the mailbox
    is evaluated again by the scheduler under the new rules."""
    saved = await service.put_rules(
        ctx, user_id=user.id, mailbox_id=mailbox_id, rules=body.to_rules()
    )
    return RulesBody.of(saved)


@router.post("/{mailbox_id}/rules/preview", response_model=RulesPreview, responses=ERRORS)
async def preview_rules(
    mailbox_id: RowId, body: RulesBody, ctx: ContextDep, user: UserDep
) -> RulesPreview:
    """Which threads would change state if these were the rules now. Nothing is saved."""
    preview = await service.preview_rules(
        ctx, user_id=user.id, mailbox_id=mailbox_id, rules=body.to_rules()
    )
    return RulesPreview(
        threads_evaluated=preview.threads_evaluated,
        threads_changing=preview.threads_changing,
        items=[RulesPreviewItem.model_validate(i, from_attributes=True) for i in preview.items],
        truncated=preview.truncated,
    )
