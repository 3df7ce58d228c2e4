"""The message store for lab IT: search, inspect, reprocess."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from labflow.api.deps import BAD_BODY, NoNul, SessionDep, TokenDep, actor, require
from labflow.models import ApiToken
from labflow.services import messages

router = APIRouter(prefix="/api/v1/messages", tags=["message store"], dependencies=[NoNul])
Operator = Annotated[ApiToken, Depends(require("supervisor", "technologist", "integration"))]
Supervisor = Annotated[ApiToken, Depends(require("supervisor"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such message"},
    401: {"description": "Token required"},
    403: {"description": "Role not allowed"},
    409: {"description": "Not reprocessable"},
}


def _filter(
    interface: str | None = None,
    status: str | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    mrn: str | None = None,
    accession: str | None = None,
    message_type: str | None = None,
) -> messages.MessageFilter:
    return messages.MessageFilter(
        interface, status, received_from, received_to, mrn, accession, message_type
    )


FilterDep = Annotated[messages.MessageFilter, Depends(_filter)]


@router.get("", responses=ERRORS)
def list_messages(
    flt: FilterDep,
    session: SessionDep,
    _token: TokenDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict[str, Any]]:
    return messages.search(session, flt, limit=limit, offset=offset)


@router.get("/{message_id}", responses=ERRORS)
def read_message(message_id: str, session: SessionDep, _token: TokenDep) -> dict[str, Any]:
    """Raw body, parsed summary, errors, attempts, resulting decisions and copies."""
    return messages.detail(session, message_id)


class Reason(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class Edited(Reason):
    body: str = Field(min_length=1, max_length=1_000_000)
    content_type: str | None = None


@router.post("/{message_id}/reprocess", responses={**ERRORS, **BAD_BODY})
def reprocess_message(
    message_id: str, body: Reason, session: SessionDep, token: Operator
) -> dict[str, Any]:
    return messages.reprocess(session, message_id, actor=actor(token), reason=body.reason)


@router.post("/reprocess", responses={**ERRORS, **BAD_BODY})
def reprocess_matching(
    flt: FilterDep, body: Reason, session: SessionDep, token: Supervisor
) -> dict[str, Any]:
    """Reprocess every message matching the filter (for example all parked of an interface)."""
    if flt.status == "duplicate":
        raise HTTPException(409, "duplicates are never applied")
    if flt == messages.MessageFilter():
        # A bulk reprocess of everything is never what a person means: ask for a filter.
        raise HTTPException(409, "name at least one filter (status, interface, time, MRN...)")
    ids = messages.reprocess_matching(session, flt, actor=actor(token), reason=body.reason)
    return {"reprocessed": ids}


@router.post("/{message_id}/edit", responses={**ERRORS, **BAD_BODY})
def edit_message(
    message_id: str, body: Edited, session: SessionDep, token: Supervisor
) -> dict[str, Any]:
    """Apply a corrected copy of a message; the original stays as it was, linked."""
    return messages.edit_and_reprocess(
        session,
        message_id,
        body=body.body.encode(),
        content_type=body.content_type,
        actor=actor(token),
        reason=body.reason,
    )
