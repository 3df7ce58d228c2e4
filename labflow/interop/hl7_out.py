"""Outbound HL7 v2.5: OML^O21 for reflex orders, ORU^R01 for interpretive comments.

ORU^R01 layout: OBR-4 `labflow-interpretation^labflow interpretive comment^LF`; OBX 1 CWE
`<code>^<text>^LF` with the status as value; OBX 2 TX with the explanation; OBX 3 ST with the
rule ids (repeating).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labflow.interop.hl7_header import escape
from labflow.interop.outbound import OutboundEvent, parse_event

VERSION = "2.5"


def render_hl7(event: Mapping[str, Any] | OutboundEvent, *, sending_app: str = "LABFLOW",
               sending_facility: str = "", receiving_app: str = "",
               receiving_facility: str = "") -> str:
    """ER7 text (`\\r`-separated) for an outbound event."""
    ev = parse_event(event)
    ts = ev.occurred_at.strftime("%Y%m%d%H%M%S%z")
    kind = "OML^O21^OML_O21" if ev.event == "reflex.requested" else "ORU^R01^ORU_R01"
    msh = "|".join(["MSH", "^~\\&", escape(sending_app), escape(sending_facility),
                    escape(receiving_app), escape(receiving_facility), ts, "", kind,
                    ev.control_id, "P", VERSION])
    # PID-5 is required in v2.5; labflow holds no names, so send the HL7 null "".
    pid = f"PID|1||{escape(ev.patient.mrn)}^^^^MR||\"\""
    body = _order(ev, ts) if ev.event == "reflex.requested" else _result(ev, ts)
    return "\r".join([msh, pid, *body]) + "\r"


def _coded(code: str, text: str) -> str:
    return f"{escape(code)}^{escape(text)}^LF"


def _order(ev: OutboundEvent, ts: str) -> list[str]:
    placer = escape(ev.event_id)
    segments = [
        f"ORC|NW|{placer}|||||||{ts}",
        f"OBR|1|{placer}||{_coded(ev.code, ev.display)}|||{ts}",
    ]
    notes = [ev.explanation] if ev.explanation else []
    if ev.rules:
        notes.append("Rules: " + ", ".join(ev.rules))
    segments += [f"NTE|{i}|L|{escape(note)}" for i, note in enumerate(notes, start=1)]
    return segments


def _result(ev: OutboundEvent, ts: str) -> list[str]:
    filler = escape(ev.decision_id or "")
    status = ev.status or ev.event.rsplit(".", 1)[-1]
    code = ev.code or "decision"
    rows = [
        ("CWE", _coded(code, ev.display), _coded(status, status)),
        ("TX", _coded("explanation", "Explanation"), escape(ev.explanation or ev.display)),
    ]
    if ev.rules:
        rows.append(("ST", _coded("rules", "Rule ids"), "~".join(escape(r) for r in ev.rules)))
    segments = [f"OBR|1|{escape(ev.event_id)}|{filler}|"
                f"{_coded('labflow-interpretation', 'labflow interpretive comment')}|||{ts}"
                f"|||||||||||||||{ts}|||F"]
    segments += [f"OBX|{i}|{vt}|{obs_id}||{value}||||||F|||{ts}"
                 for i, (vt, obs_id, value) in enumerate(rows, start=1)]
    return segments
