"""Outbound webhook subscriptions and their deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col

from labflow.api.deps import BAD_BODY, NoNul, SessionDep, actor, require
from labflow.models import ApiToken, Subscription
from labflow.services import subscriptions
from labflow.settings import OutboundWebhook

router = APIRouter(prefix="/api/v1/subscriptions", tags=["outbound"], dependencies=[NoNul])
Admin = Annotated[ApiToken, Depends(require())]
Reader = Annotated[ApiToken, Depends(require("supervisor", "integration"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such subscription or delivery"},
    401: {"description": "Token required"},
    403: {"description": "Admin only"},
    409: {"description": "URL already subscribed"},
}


@router.get("", responses=ERRORS)
def list_subscriptions(session: SessionDep, _token: Reader) -> list[dict[str, Any]]:
    return [subscriptions.view(s) for s in session.scalars(select(Subscription))]


@router.post("", status_code=201, responses={**ERRORS, **BAD_BODY})
def create_subscription(hook: OutboundWebhook, session: SessionDep, token: Admin) -> dict[str, Any]:
    if session.scalars(select(Subscription).where(col(Subscription.url) == hook.url)).first():
        raise HTTPException(409, "this URL is already subscribed")
    return subscriptions.view(subscriptions.create(session, hook, actor=actor(token)))


class Enabled(BaseModel):
    enabled: bool


@router.post("/{subscription_id}/enabled", responses={**ERRORS, **BAD_BODY})
def set_enabled(
    subscription_id: str, body: Enabled, session: SessionDep, token: Admin
) -> dict[str, Any]:
    return subscriptions.set_enabled(session, subscription_id, body.enabled, actor=actor(token))


@router.get("/{subscription_id}/deliveries", responses=ERRORS)
def list_deliveries(
    subscription_id: str, session: SessionDep, _token: Reader, status: str | None = None
) -> list[dict[str, Any]]:
    return subscriptions.deliveries(session, subscription_id, status=status)


@router.post("/deliveries/{delivery_id}/replay", responses=ERRORS)
def replay_delivery(delivery_id: str, session: SessionDep, token: Admin) -> dict[str, Any]:
    return subscriptions.replay(session, delivery_id, actor=actor(token))
