"""Patient state and decision history (contract section 3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from labflow.api.deps import BAD_BODY, NoNul, SessionDep, TokenDep, actor, require
from labflow.models import ApiToken
from labflow.services import patients

router = APIRouter(prefix="/api/v1/patients", tags=["patients"], dependencies=[NoNul])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such patient or requirement"},
    401: {"description": "Bearer token required"},
}


@router.get("/{mrn}", responses=NOT_FOUND)
def read_patient(mrn: str, session: SessionDep, _token: TokenDep) -> dict[str, Any]:
    """Therapies and interference window, requirements, open flags, reflex orders, crossmatch."""
    return patients.patient_view(session, mrn)


@router.get("/{mrn}/decisions", responses=NOT_FOUND)
def read_decisions(
    mrn: str,
    session: SessionDep,
    _token: TokenDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict[str, Any]]:
    """Every decision: trigger, protocol and profile versions, rules fired, explanation."""
    return patients.decisions(session, mrn, limit=limit, offset=offset)


class Removal(BaseModel):
    reason: str = Field(
        min_length=3,
        max_length=2000,
        description="Why (e.g. negative standard screen after the window)",
    )


@router.post(
    "/{mrn}/requirements/{code}/remove",
    responses={**NOT_FOUND, **BAD_BODY, 403: {"description": "Role may not remove requirements"}},
)
def remove_requirement(
    mrn: str,
    code: str,
    removal: Removal,
    session: SessionDep,
    token: Annotated[ApiToken, Depends(require("supervisor"))],
) -> dict[str, Any]:
    """A person confirms that a requirement is no longer needed (R-D4); audited."""
    return patients.remove_requirement(
        session, mrn=mrn, code=code, actor=actor(token), reason=removal.reason
    )
