"""HL7 v2 application acknowledgement (original mode): MSH + MSA (+ ERR per error).

Built by hand rather than with python-hl7's `create_ack` because we need ERR segments, a
timezone-aware timestamp and an answer even when the inbound MSH was unusable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from labflow.interop.hl7_header import Hl7Header, escape

AckCode = Literal["AA", "AE", "AR"]
DEFAULT_APP = "LABFLOW"
DEFAULT_VERSION = "2.5.1"

# HL7 table 0357 (message error condition codes), chosen from the mappers' wording.
_ERROR_CODES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("unsupported message type",), "200", "Unsupported message type"),
    (("no patient mrn", "control id is empty", "message type is empty", "no clinical time",
      "has no value", "no medication code"), "101", "Required field missing"),
    (("unknown", "not a result labflow reads", "not an order labflow reads",
      "is not a typing method", "is not a cell/plasma treatment"), "103",
     "Table value not found"),
    (("not an hl7 timestamp", "is not a number", "neither positive", "is not ig",
      "is not shifted", "is not detected", "unit '"), "102", "Data type error"),
)
_LOCATIONS = {"no patient mrn": "PID^1^3", "control id is empty": "MSH^1^10",
              "message type is empty": "MSH^1^9"}


def error_code(message: str) -> tuple[str, str, str]:
    """(table 0357 code, its name, ERR-2 location) for a mapper error message."""
    lowered = message.lower()
    location = next((loc for key, loc in _LOCATIONS.items() if key in lowered), "")
    for needles, code, name in _ERROR_CODES:
        if any(n in lowered for n in needles):
            return code, name, location
    return "207", "Application internal error", location


def build_ack(header: Hl7Header | None, code: AckCode, errors: Sequence[str] = (), *,
              now: datetime | None = None, control_id: str | None = None) -> str:
    """The ACK for a message whose MSH was `header` (None: no usable MSH); `\\r`-separated."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%z")
    trigger = header.trigger if header else ""
    fields = [
        "MSH", "^~\\&",
        escape(header.receiving_app if header and header.receiving_app else DEFAULT_APP),
        escape(header.receiving_facility if header else ""),
        escape(header.sending_app if header else ""),
        escape(header.sending_facility if header else ""),
        stamp, "",
        f"ACK^{escape(trigger)}^ACK",
        escape(control_id or uuid.uuid4().hex[:20]),
        escape(header.processing_id if header else "P"),
        escape(header.version if header and header.version else DEFAULT_VERSION),
    ]
    text = escape(errors[0][:80]) if errors and code != "AA" else ""
    segments = ["|".join(fields),
                # MSA-2 is required: without a readable MSH-10, send the HL7 null "".
                "|".join(["MSA", code, escape(header.control_id) if header else '""'] +
                         ([text] if text else []))]
    if code != "AA":
        legacy = _before_v25(header.version if header else DEFAULT_VERSION)
        segments += [_err(message, legacy) for message in errors]
    return "\r".join(segments) + "\r"


def _err(message: str, legacy: bool) -> str:
    err, name, location = error_code(message)
    if legacy:  # v2.1-2.4: ERR-1 only (ELD: segment^sequence^field^code&text&system)
        seg, seq, fld = [*location.split("^"), "", "", ""][:3]
        return f"ERR|{seg}^{seq}^{fld}^{err}&{name}&HL70357"
    return f"ERR||{location}|{err}^{name}^HL70357|E||||{escape(message)}"


def _before_v25(version: str) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")[:2]) < (2, 5)
    except ValueError:
        return False
