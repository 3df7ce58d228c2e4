"""Accumulates findings and rule firings during one evaluation, then freezes them sorted by code.

Several rules may raise the same code; the finding then carries the union of their rule ids and
their explanations in evaluation order (which is fixed), so output stays deterministic.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from protocols.codes import FLAGS, REFLEX_ORDERS, is_requirement
from protocols.decision import Finding, RuleFiring, trusted_all

# A firing as recorded: (rule, explanation, inputs); RuleFiring models are built once, at freeze.
_Firing = tuple[str, str, dict[str, Any]]
_rule_of = itemgetter(0)
# A code raised once (the usual case): (rules, explanation, refs, blocks_issue) as given.
_Single = tuple[tuple[str, ...], str, tuple[str, ...], bool]


class _Draft:
    """A code raised more than once: the union of its rules and refs, explanations in order."""

    __slots__ = ("blocks_issue", "explanations", "refs", "rules")

    def __init__(
        self, rules: tuple[str, ...], explanation: str, refs: tuple[str, ...], blocks_issue: bool
    ) -> None:
        self.rules: set[str] = set(rules)
        self.explanations: list[str] = [explanation]
        self.refs: set[str] = set(refs)
        self.blocks_issue = blocks_issue


def _add(
    bucket: dict[str, _Single | _Draft],
    code: str,
    rules: tuple[str, ...],
    explanation: str,
    refs: tuple[str, ...],
    blocks_issue: bool,
) -> None:
    found = bucket.get(code)
    if found is None:
        bucket[code] = (rules, explanation, refs, blocks_issue)
        return
    if isinstance(found, _Draft):
        draft = found
    else:
        draft = bucket[code] = _Draft(*found)
    draft.rules.update(rules)
    if explanation not in draft.explanations:
        draft.explanations.append(explanation)
    draft.refs.update(refs)
    draft.blocks_issue = draft.blocks_issue or blocks_issue


def _finding(code: str, entry: _Single | _Draft, emergency: bool) -> dict[str, Any]:
    """A Finding's fields; rules and refs sorted and unique, as one _Draft would give them."""
    if isinstance(entry, _Draft):
        rules: tuple[str, ...] = tuple(sorted(entry.rules))
        explanation = " ".join(entry.explanations)
        refs: tuple[str, ...] = tuple(sorted(entry.refs))
        blocks_issue = entry.blocks_issue
    else:
        rules, explanation, refs, blocks_issue = entry
        # Most findings cite one rule and no refs: sorted() only when it can matter.
        if len(rules) > 1:
            rules = tuple(sorted(set(rules)))
        elif type(rules) is not tuple:
            rules = tuple(rules)
        refs = tuple(sorted(set(refs))) if refs else ()
    return {
        "code": code,
        "rules": rules,
        "explanation": explanation,
        "refs": refs,
        # R-H1: nothing holds an emergency
        "blocks_issue": blocks_issue and not emergency,
    }


def _freeze(bucket: dict[str, _Single | _Draft], emergency: bool) -> tuple[Finding, ...]:
    if not bucket:
        return ()
    rows = []
    for code, entry in sorted(bucket.items()):
        if type(entry) is tuple and type(entry[0]) is tuple and len(entry[0]) == 1 and not entry[2]:
            # The usual finding: one rule, no refs, raised once; its fields as given.
            rules, explanation, _, blocks_issue = entry
            rows.append(
                {
                    "code": code,
                    "rules": rules,
                    "explanation": explanation,
                    "refs": (),
                    "blocks_issue": blocks_issue and not emergency,
                }
            )
        else:
            rows.append(_finding(code, entry, emergency))
    return trusted_all(Finding, rows)


class Collector:
    __slots__ = ("comments", "fired", "flags", "reflex", "requirements")

    def __init__(self) -> None:
        self.flags: dict[str, _Single | _Draft] = {}
        self.requirements: dict[str, _Single | _Draft] = {}
        self.reflex: dict[str, _Single | _Draft] = {}
        self.comments: dict[str, _Single | _Draft] = {}
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
        explicit = set(map(_rule_of, self.fired))
        cited: dict[str, list[str]] = {}
        for bucket in (self.flags, self.requirements, self.reflex, self.comments):
            for code, entry in bucket.items():
                for rule in entry.rules if isinstance(entry, _Draft) else entry[0]:
                    if rule not in explicit:
                        cited.setdefault(rule, []).append(code)
        firings = self.fired
        if cited:
            firings = [
                *firings,
                *[(rule, "Cited by findings.", {"codes": sorted(found)})
                  for rule, found in cited.items()],
            ]
        fired = trusted_all(
            RuleFiring,
            [
                {"rule": rule, "inputs": inputs, "explanation": explanation}
                for rule, explanation, inputs in sorted(firings, key=_rule_of)  # stable
            ],
        )
        return (
            _freeze(self.flags, emergency),
            _freeze(self.requirements, emergency),
            _freeze(self.reflex, emergency),
            _freeze(self.comments, emergency),
            fired,
        )
