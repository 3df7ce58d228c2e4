"""R-D4: requirements already in force are never dropped by the engine.

An active requirement the current facts no longer support is kept in the output and flagged
REQUIREMENT_REVIEW_DUE; removing it is a person's decision (e.g. after a negative standard screen
on a sample taken after the window).
"""

from __future__ import annotations

from protocols.codes import is_requirement
from protocols.collector import Collector
from protocols.context import Context


def apply(ctx: Context, out: Collector) -> None:
    due: list[str] = []
    ended = [e for e in ctx.rbc_given if not e.active and e.interference_until is not None]
    window_end = max((e.interference_until for e in ended if e.interference_until), default=None)
    window_over = bool(ended) and not ctx.cd38 and not ctx.cd47
    for active in ctx.facts.active_requirements:
        if not is_requirement(active.code) or out.has_requirement(active.code):
            continue
        why = (
            f"the interference window ended on {window_end}"
            if window_over
            else "current facts no longer support it"
        )
        out.require(
            active.code,
            ("R-D4",),
            f"In force since {active.since.date()}; kept because {why}: removal needs a user "
            "decision.",
        )
        due.append(active.code)
    if not due:
        return
    evidence = None
    if window_end is not None:
        evidence = next(
            (
                s for s in reversed(ctx.facts.screens)
                if s.method == "UNTREATED" and s.interpretation == "negative"
                and s.effective.date() > window_end
            ),
            None,
        )
    support = (
        f" Evidence for removal: negative standard screen on {evidence.effective.date()}."
        if evidence
        else " Evidence for removal (e.g. a negative standard screen after the window) pending."
    )
    out.flag(
        "REQUIREMENT_REVIEW_DUE",
        ("R-D4",),
        f"Review {', '.join(due)}: no longer supported; propose removal (needs user confirmation)."
        + support,
        refs=tuple(due),
    )
    out.fire(
        "R-D4",
        "Unsupported requirements kept pending review.",
        requirements=due,
        window_end=window_end,
        removal_evidence=evidence.effective if evidence else None,
    )
