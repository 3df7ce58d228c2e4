"""The evaluator's output: what to flag, require, order, and why."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Model = TypeVar("Model", bound=BaseModel)
_new = object.__new__
# BaseModel's own slots and __dict__, written through their descriptors (cheaper than setattr).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def trusted(cls: type[Model], fields: dict[str, Any]) -> Model:
    """An instance of `cls` from values the evaluator built itself, skipping validation.

    Validated construction costs 2-3 us per model (model_construct is no cheaper) and the
    evaluator builds dozens per call. This does what model_construct does, minus its per-field
    default handling: `fields` must name every field, already of its declared type (tuples, not
    lists), so the instance equals and dumps exactly like `cls(**fields)`. Only for models
    without private attributes or extras.
    """
    instance = _new(cls)
    _set_dict(instance, fields)
    _set_fields_set(instance, set(fields))
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def trusted_all(cls: type[Model], rows: Iterable[dict[str, Any]]) -> tuple[Model, ...]:
    """trusted(cls, fields) for each of `rows`, as a tuple (one loop, no per-row call)."""
    new, set_dict, set_fields_set = _new, _set_dict, _set_fields_set
    set_extra, set_private = _set_extra, _set_private
    built: list[Model] = []
    append = built.append
    for fields in rows:
        instance = new(cls)
        set_dict(instance, fields)
        set_fields_set(instance, set(fields))
        set_extra(instance, None)
        set_private(instance, None)
        append(instance)
    return tuple(built)


CrossmatchMode = Literal["ELECTRONIC", "IMMEDIATE_SPIN", "AHG_DTT", "AHG"]


class Finding(BaseModel):
    """One flag, requirement, reflex order or report comment, with the rules behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    rules: tuple[str, ...]
    explanation: str
    refs: tuple[str, ...] = Field(
        default=(), description="Codes this finding refers to (e.g. the requirement under review)."
    )
    blocks_issue: bool = Field(
        default=False,
        description="Routine issue should wait for this to be resolved. Never true when an "
        "emergency release is in progress (R-H1).",
    )


class Crossmatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: CrossmatchMode
    electronic_allowed: bool
    rules: tuple[str, ...] = ()
    explanation: str = ""


class RuleFiring(BaseModel):
    """Which rule fired, on which inputs, and what it concluded (the explanation trail)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    explanation: str


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: datetime
    flags: tuple[Finding, ...] = ()
    requirements: tuple[Finding, ...] = ()
    reflex_orders: tuple[Finding, ...] = ()
    comments: tuple[Finding, ...] = ()
    crossmatch: Crossmatch | None = None
    fired: tuple[RuleFiring, ...] = ()
    protocol_id: str
    protocol_version: str
    protocol_hash: str
    profile_hash: str

    @property
    def rules_fired(self) -> tuple[str, ...]:
        return tuple(sorted({f.rule for f in self.fired}))
