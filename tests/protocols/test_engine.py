"""Engine-level behaviour: as_of filtering, trigger, time zones, identity fields, vocabulary."""

from __future__ import annotations

from datetime import datetime

import pytest

from protocols import PatientFacts, evaluate, load_profile, load_protocol
from protocols.collector import Collector

from .builders import NOW, PANREACTIVE, flags, ongoing, run, screen


def test_decision_carries_protocol_and_profile_identity() -> None:
    decision = run(ongoing())
    protocol = load_protocol()
    assert (decision.protocol_id, decision.protocol_version) == (protocol.id, protocol.version)
    assert decision.protocol_hash == protocol.content_hash
    assert decision.profile_hash == load_profile(None).content_hash
    assert decision.as_of == NOW


def test_trigger_counts_even_if_not_listed_in_facts() -> None:
    facts = PatientFacts(facts=(ongoing(),), trigger=screen(0, PANREACTIVE))
    decision = evaluate(load_protocol(), load_profile(None), facts, NOW)
    assert "IAT_INTERFERENCE_SUSPECTED" in flags(decision)


def test_naive_and_aware_times_mix_without_error() -> None:
    naive = screen(0, PANREACTIVE).model_copy(update={"effective": datetime(2026, 6, 15, 11)})
    decision = run(ongoing(), naive, as_of=NOW)
    assert "IAT_INTERFERENCE_SUSPECTED" in flags(decision)


def test_as_of_earlier_sees_less() -> None:
    decision = run(ongoing(started_days_ago=60), screen(0, PANREACTIVE),
                   as_of=NOW.replace(month=5))
    assert "IAT_INTERFERENCE_SUSPECTED" not in flags(decision)
    assert "ANTI_CD38_ACTIVE" in flags(decision)


def test_collector_rejects_codes_outside_the_contract() -> None:
    out = Collector()
    with pytest.raises(ValueError):
        out.flag("DARA_ALERT", ("R-A1",), "x")
    with pytest.raises(ValueError):
        out.require("ANTIGEN_NEGATIVE:", ("R-E2",), "x")
    with pytest.raises(ValueError):
        out.order("PANEL", ("R-F1",), "x")
