"""evaluate(): facts -> Decision. Pure: no clock, no I/O, no logging.

Rule groups run in a fixed order (exposure, baseline, IAT, Kell, antibodies, no-DTT, anti-CD47,
emergency, crossmatch, IFE, then the R-D4 lifecycle check that needs everything else's output),
so the same facts always give the same decision.
"""

from __future__ import annotations

from datetime import datetime

from protocols import (
    lifecycle,
    rules_antibody,
    rules_baseline,
    rules_cd47,
    rules_crossmatch,
    rules_emergency,
    rules_exposure,
    rules_iat,
    rules_ife,
    rules_kell,
    rules_no_dtt,
)
from protocols.collector import Collector
from protocols.context import build_context
from protocols.decision import Decision, trusted
from protocols.exposure import agent_names, compute_exposures
from protocols.fact_index import index_facts
from protocols.facts import PatientFacts
from protocols.model import Protocol
from protocols.profile import LabProfile

_GROUPS = (
    rules_exposure.apply,
    rules_baseline.apply,
    rules_iat.apply,
    rules_kell.apply,
    rules_antibody.apply,
    rules_no_dtt.apply,
    rules_cd47.apply,
    rules_emergency.apply,
)


def evaluate(
    protocol: Protocol, profile: LabProfile, facts: PatientFacts, as_of: datetime
) -> Decision:
    """Decide flags, requirements, reflex orders, comments and crossmatch as of `as_of`.

    Only facts with `effective <= as_of` count.
    """
    index = index_facts(facts, as_of)
    names = agent_names(protocol, profile, index.therapies)
    records = compute_exposures(protocol, profile, index.therapies, index.today, names)
    ctx = build_context(protocol, profile, index, records, names)
    out = Collector()
    for group in _GROUPS:
        group(ctx, out)
    crossmatch = rules_emergency.wrap_crossmatch(ctx, rules_crossmatch.apply(ctx, out))
    rules_ife.apply(ctx, out)
    lifecycle.apply(ctx, out)
    flags, requirements, reflex, comments, fired = out.frozen(emergency=ctx.emergency is not None)
    # Every part was built by the evaluator itself (findings and firings already as models):
    # skip re-validation, as the nested models do (decision.trusted).
    return trusted(
        Decision,
        {
            "as_of": as_of,
            "flags": flags,
            "requirements": requirements,
            "reflex_orders": reflex,
            "comments": comments,
            "crossmatch": crossmatch,
            "fired": fired,
            "protocol_id": protocol.id,
            "protocol_version": protocol.version,
            "protocol_hash": protocol.content_hash,
            "profile_hash": profile.content_hash,
        },
    )
