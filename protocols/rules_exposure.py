"""Rule group A (exposure and window) and the communication / terminology rules R-K2, R-K3."""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context
from protocols.exposure import Exposure


def apply(ctx: Context, out: Collector) -> None:
    names = ctx.agent_names
    for raw in sorted(names):
        agent = names[raw]
        if agent != raw:
            out.fire(
                "R-K3",
                f"Drug reference {raw!r} matched to agent {agent}.",
                reference=raw,
                agent=agent,
            )
    for exposure in ctx.exposures:
        inputs = {
            "agent": exposure.agent,
            "route": exposure.route,
            "first_dose": exposure.first_dose,
            "last_dose": exposure.last_dose,
            "ongoing": exposure.ongoing,
            "planned": exposure.planned,
            "until": exposure.interference_until,
            "profile": exposure.profile,
        }
        state = "planned (not yet interfering)" if exposure.planned else (
            "active" if exposure.active else "outside its window"
        )
        out.fire("R-A1", f"{exposure.agent} exposure recorded: {state}.", **inputs)
        if not exposure.planned:
            out.fire("R-A2", f"{exposure.agent}: {_until(exposure)}.", **inputs)
        if exposure.agent == "daratumumab" and exposure.route == "SC":
            out.fire(
                "R-A3",
                "Subcutaneous daratumumab is stored as such and handled like IV.",
                route=exposure.route,
                product=exposure.product,
            )
        if exposure.evidence != "known-to-interfere" and exposure.profile != "ife-only":
            out.fire(
                "R-A4",
                f"{exposure.agent} has evidence state '{exposure.evidence}'; handled as "
                f"{exposure.profile} until the laboratory director overrides it.",
                agent=exposure.agent,
                evidence=exposure.evidence,
                profile=exposure.profile,
            )
    _active_flags(ctx, out)
    for exposure in ctx.planned:
        out.comment(
            "NOTIFY_BLOOD_BANK",
            ("R-K2", "R-B1"),
            f"First {exposure.agent} order: notify the blood bank, issue the patient alert card "
            "and keep the pre-treatment compatibility profile for other hospitals.",
        )
        out.fire("R-K2", f"First {exposure.agent} order: notify.", agent=exposure.agent)


def _until(exposure: Exposure) -> str:
    if exposure.ongoing:
        return "therapy ongoing"
    return f"window until {exposure.interference_until}"


def _active_flags(ctx: Context, out: Collector) -> None:
    for exposure in ctx.cd38:
        rules = ["R-A1", "R-A2"]
        if exposure.agent == "daratumumab" and exposure.route == "SC":
            rules.append("R-A3")
        if exposure.evidence != "known-to-interfere":
            rules.append("R-A4")
        out.flag(
            "ANTI_CD38_ACTIVE",
            tuple(rules),
            f"{exposure.agent} ({exposure.route or 'route not recorded'}): {_until(exposure)}; "
            "indirect antiglobulin tests may be panreactive.",
        )
    for exposure in ctx.cd47:
        out.flag(
            "ANTI_CD47_ACTIVE",
            ("R-A1", "R-A2", "R-I1"),
            f"{exposure.agent}: {_until(exposure)}; interference in all phases, DTT ineffective.",
        )
