"""`POST /api/v1/evaluate`: what-if evaluation of posted facts; nothing is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from labflow import clinical
from labflow.api.deps import TokenDep
from protocols import PatientFacts, ProfileError, evaluate, profile_from_mapping
from protocols.decision import Decision
from protocols.facts import ActiveRequirement, Fact

router = APIRouter(prefix="/api/v1", tags=["evaluate"])


class WhatIf(BaseModel):
    facts: list[Fact] = Field(default_factory=list)
    active_requirements: list[ActiveRequirement] = Field(default_factory=list)
    as_of: datetime
    profile: dict[str, Any] | None = Field(
        default=None, description="Lab-profile keys to try instead of the profile in force"
    )


@router.post(
    "/evaluate",
    response_model=Decision,
    responses={
        400: {"description": "Invalid lab profile, dates out of range, or unparseable body"},
        401: {"description": "Token required"},
    },
)
def what_if(body: WhatIf, _token: TokenDep) -> Decision:
    """Evaluate facts under the current (or a posted) lab profile, e.g. before go-live."""
    try:
        profile = clinical.profile() if body.profile is None else profile_from_mapping(body.profile)
    except ProfileError as exc:
        raise HTTPException(400, str(exc)) from exc
    facts = PatientFacts(
        facts=tuple(body.facts), active_requirements=tuple(body.active_requirements)
    )
    try:
        return evaluate(clinical.protocol(), profile, facts, body.as_of)
    except OverflowError as exc:  # e.g. as_of 0001-01-01: a look-back window leaves datetime
        raise HTTPException(400, "dates out of the supported range") from exc
