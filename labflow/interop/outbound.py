"""The outbound event every renderer reads (the dict the webhook dispatcher hands over)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labflow.interop.model import PatientRef

EventName = Literal["flag.raised", "flag.resolved", "requirement.added",
                    "requirement.removed", "reflex.requested", "decision.recorded"]
ACTIVATING = frozenset({"flag.raised", "requirement.added", "reflex.requested"})


class OutboundEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event: EventName
    event_id: str = Field(min_length=1)
    occurred_at: datetime
    patient: PatientRef
    code: str = ""
    status: str = ""
    rules: tuple[str, ...] = ()
    explanation: str = ""
    decision_id: str | None = None

    @property
    def display(self) -> str:
        """Human text for the code: contract codes are SHOUTY_SNAKE, so spaces suffice."""
        return self.code.replace("_", " ") if self.code else "labflow decision"

    @property
    def control_id(self) -> str:
        # Stable per event (a redelivery carries the same id) and within HL7's 20 characters.
        return hashlib.sha1(self.event_id.encode()).hexdigest()[:20]


def parse_event(event: Mapping[str, Any] | OutboundEvent) -> OutboundEvent:
    if isinstance(event, OutboundEvent):
        return event
    try:
        return OutboundEvent.model_validate(event)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ValueError("invalid outbound event: " + "; ".join(lines)) from None
