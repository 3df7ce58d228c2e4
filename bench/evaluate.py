"""Benchmark: pure evaluator vs parsing the same facts from JSON (`python bench/evaluate.py`).

Builds a year of daratumumab therapy (weekly, then every 2 weeks, then monthly) plus ~30
screens, panels, typings and IFE/SPEP results, and reports evaluations/s, parses/s and the ratio.
Target: one evaluation costs less than one `PatientFacts.model_validate_json`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols import (
    AboRh,
    ActiveRequirement,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    Fact,
    Immunofixation,
    MProteinIsotype,
    MSpike,
    Order,
    PatientFacts,
    Therapy,
    evaluate,
    load_profile,
    load_protocol,
)

START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
AS_OF = START + timedelta(days=365)


def history() -> PatientFacts:
    facts: list[Fact] = [
        MProteinIsotype(effective=START - timedelta(days=30), isotype="IgG-kappa"),
        AboRh(effective=START - timedelta(days=10), group="A POS"),
        AntibodyScreen(effective=START - timedelta(days=10), interpretation="negative",
                       cells={"I": "0", "II": "0", "III": "0"}),
        Therapy(effective=START - timedelta(days=14), agent="daratumumab", record="planned"),
    ]
    facts += [
        AntigenTyping(effective=START - timedelta(days=10), antigen=a, positive=a in "cek",
                      method="serology-direct")
        for a in ["C", "c", "E", "e", "K", "Fya", "Fyb", "Jka", "Jkb", "S", "s"]
    ]
    day = 0
    while day <= 360:  # weekly x8, every 2 weeks x8, then every 4 weeks (daratumumab schedule)
        facts.append(Therapy(effective=START + timedelta(days=day), agent="daratumumab",
                             route="SC", last_dose=(START + timedelta(days=day)).date(),
                             first_dose=START.date(), ongoing=True, evidence_source="eMAR"))
        day += 7 if day < 56 else 14 if day < 168 else 28
    for month in range(12):
        when = START + timedelta(days=30 * month + 3)
        facts.append(AntibodyScreen(effective=when, interpretation="positive",
                                    cells={"I": "1+", "II": "1+", "III": "1+"}))
        facts.append(AntibodyScreen(effective=when + timedelta(hours=6), interpretation="negative",
                                    cells={"I": "0", "II": "0", "III": "0"}, method="DTT"))
        facts.append(MSpike(effective=when, g_dl=max(0.05, 1.5 - 0.15 * month)))
        facts.append(Immunofixation(effective=when, bands=("IgG-kappa",)))
    facts.append(AntibodyIdentification(effective=START + timedelta(days=200),
                                        specificities=("anti-E",), method="DTT"))
    facts.append(Order(effective=AS_OF - timedelta(hours=2), code="RBC"))
    facts.append(Order(effective=AS_OF - timedelta(hours=3), code="IFE", suspected_cr=True))
    return PatientFacts(
        facts=tuple(facts),
        active_requirements=(ActiveRequirement(code="K_NEGATIVE_RBC", since=START),),
    )


def rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    fn()  # warm caches (protocol lookups, profile hash)
    count = 0
    began = time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        for _ in range(50):
            fn()
        count += 50
    return count / elapsed


def main() -> None:
    protocol = load_protocol()
    profile = load_profile(None)
    facts = history()
    payload = facts.model_dump_json()
    assert PatientFacts.model_validate_json(payload) == facts
    decision = evaluate(protocol, profile, facts, AS_OF)
    evals = rate(lambda: evaluate(protocol, profile, facts, AS_OF))
    parses = rate(lambda: PatientFacts.model_validate_json(payload))
    print(f"facts: {len(facts.facts)} ({len(payload)} bytes of JSON); "
          f"decision: {len(decision.flags)} flags, {len(decision.requirements)} requirements, "
          f"{len(decision.reflex_orders)} reflex orders, {len(decision.fired)} firings")
    print(f"evaluate:            {evals:10.0f} /s  ({1e6 / evals:7.1f} us each)")
    print(f"model_validate_json: {parses:10.0f} /s  ({1e6 / parses:7.1f} us each)")
    print(f"evaluate cost / parse cost: {parses / evals:.2f} (target < 1)")


if __name__ == "__main__":
    main()
