"""Accumulates findings and rule firings during one evaluation, then freezes them sorted by code.

Several rules may raise the same code; the finding then carries the union of their rule ids and
their explanations in evaluation order (which is fixed), so output stays deterministic.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from protocols.codes import FLAGS, REFLEX_ORDERS, is_requirement
from protocols.decision import Finding, RuleFiring, trusted

# A firing as recorded: (rule, explanation, inputs); RuleFiring models are built once, at freeze.
_Firing = tuple[str, str, dict[str, Any]]
_rule_of = itemgetter(0)


class _Draft:
    __slots__ = ("blocks_issue", "explanations", "refs", "rules")

    def __init__(
        self, rules: tuple[str, ...], explanation: str, refs: tuple[str, ...], blocks_issue: bool
    ) -> None:
        self.rules: set[str] = set(rules)
        self.explanations: list[str] = [explanation]
        self.refs: set[str] = set(refs)
        self.blocks_issue = blocks_issue


def _add(
    bucket: dict[str, _Draft],
    code: str,
    rules: tuple[str, ...],
    explanation: str,
    refs: tuple[str, ...],
    blocks_issue: bool,
) -> None:
    draft = bucket.get(code)
    if draft is None:
        bucket[code] = _Draft(rules, explanation, refs, blocks_issue)
        return
    draft.rules.update(rules)
    if explanation not in draft.explanations:
        draft.explanations.append(explanation)
    draft.refs.update(refs)
    draft.blocks_issue = draft.blocks_issue or blocks_issue


def _freeze(bucket: dict[str, _Draft], emergency: bool) -> tuple[Finding, ...]:
    return tuple(
        trusted(
            Finding,
            {
                "code": code,
                # Most findings cite one rule and no refs: sorted() only when it can matter.
                "rules": tuple(sorted(d.rules)) if len(d.rules) > 1 else tuple(d.rules),
                "explanation": " ".join(d.explanations),
                "refs": tuple(sorted(d.refs)) if d.refs else (),
                # R-H1: nothing holds an emergency
                "blocks_issue": d.blocks_issue and not emergency,
            },
        )
        for code, d in sorted(bucket.items())
    )


class Collector:
    __slots__ = ("comments", "fired", "flags", "reflex", "requirements")

    def __init__(self) -> None:
        self.flags: dict[str, _Draft] = {}
        self.requirements: dict[str, _Draft] = {}
        self.reflex: dict[str, _Draft] = {}
        self.comments: dict[str, _Draft] = {}
        self.fired: list[_Firing] = []

    def flag(
        self,
        code: str,
        rules: tuple[str, ...],
        explanation: str,
        *,
        refs: tuple[str, ...] = (),
        blocks_issue: bool = False,
    ) -> None:
        if code not in FLAGS:
            raise ValueError(f"not a contract flag: {code}")
        _add(self.flags, code, rules, explanation, refs, blocks_issue)

    def require(
        self, code: str, rules: tuple[str, ...], explanation: str, *, blocks_issue: bool = False
    ) -> None:
        if not is_requirement(code):
            raise ValueError(f"not a contract requirement: {code}")
        _add(self.requirements, code, rules, explanation, (), blocks_issue)

    def order(self, code: str, rules: tuple[str, ...], explanation: str) -> None:
        if code not in REFLEX_ORDERS:
            raise ValueError(f"not a contract reflex order: {code}")
        _add(self.reflex, code, rules, explanation, (), False)

    def comment(self, code: str, rules: tuple[str, ...], explanation: str) -> None:
        _add(self.comments, code, rules, explanation, (), False)

    def fire(self, rule: str, explanation: str, **inputs: Any) -> None:
        self.fired.append((rule, explanation, inputs))

    def has_flag(self, code: str) -> bool:
        return code in self.flags

    def has_requirement(self, code: str) -> bool:
        return code in self.requirements

    def frozen(
        self, emergency: bool
    ) -> tuple[
        tuple[Finding, ...],
        tuple[Finding, ...],
        tuple[Finding, ...],
        tuple[Finding, ...],
        tuple[RuleFiring, ...],
    ]:
        # Every rule a finding cites appears in the trail, with the codes it contributed to.
        explicit = {f[0] for f in self.fired}
        cited: dict[str, list[str]] = {}
        for bucket in (self.flags, self.requirements, self.reflex, self.comments):
            for code, draft in bucket.items():
                for rule in draft.rules:
                    if rule not in explicit:
                        cited.setdefault(rule, []).append(code)
        extra = [
            (rule, "Cited by findings.", {"codes": sorted(found)}) for rule, found in cited.items()
        ]
        fired = tuple(
            trusted(RuleFiring, {"rule": rule, "inputs": inputs, "explanation": explanation})
            for rule, explanation, inputs in sorted([*self.fired, *extra], key=_rule_of)  # stable
        )
        return (
            _freeze(self.flags, emergency),
            _freeze(self.requirements, emergency),
            _freeze(self.reflex, emergency),
            _freeze(self.comments, emergency),
            fired,
        )
