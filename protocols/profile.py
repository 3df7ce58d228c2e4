"""The lab profile: every parameter of the rules' catalogue plus contract section 5.

A profile file may set only some keys; the rest keep the defaults below (per-agent maps merge key
by key). Unknown keys and bad values raise ProfileError naming the key path and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from protocols.catalog import DATA_DIR, canonical_hash, load_protocol
from protocols.codes import HandlingProfile
from protocols.facts import TreatmentMethod, TypingMethod

DEFAULT_PROFILE_FILE = DATA_DIR / "default_profile.yaml"
UNKNOWN_ANTI_CD38 = "unknown_anti_cd38"


class ProfileError(ValueError):
    """A lab profile could not be loaded; `errors` lists "key.path: problem" strings."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _agent_key(key: str) -> str:
    """Window keys: an agent, `<agent>_iv` / `<agent>_sc` (R-A3) or unknown_anti_cd38 (R-A4)."""
    agents = load_protocol().agents
    base = key.removesuffix("_iv").removesuffix("_sc")
    if key != UNKNOWN_ANTI_CD38 and base not in agents:
        raise ValueError(f"{key!r} is not a known agent")
    return key


def _known_agent(key: str) -> str:
    if key not in load_protocol().agents:
        raise ValueError(f"{key!r} is not a known agent")
    return key


def _kit_agent(key: str) -> str:
    agent = load_protocol().agents.get(key)
    if agent is None or agent.ife_kit is None:
        raise ValueError(f"{key!r} is not an agent with a drug-specific IFE kit")
    return key


def _system_code(key: str) -> str:
    system, sep, code = key.partition("|")
    if not sep or not system or not code:
        raise ValueError(f"{key!r} is not of the form 'system|code'")
    return key


WindowKey = Annotated[str, AfterValidator(_agent_key)]
AgentKey = Annotated[str, AfterValidator(_known_agent)]
KitAgent = Annotated[str, AfterValidator(_kit_agent)]
SystemCode = Annotated[str, AfterValidator(_system_code)]
Months = Annotated[int, Field(ge=1, le=60)]
ResolvingMethod = Literal["DTT", "TCEP", "TRYPSIN", "CD38-NEUTRALIZATION"]


def _dtt_default() -> list[str]:
    return list(load_protocol().methods["DTT"].antigens())


class DttProtocol(BaseModel):
    """R-D1 bench parameters (recorded with the decision; the evaluator does not run the bench)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    concentration_molar: float = Field(default=0.2, gt=0)
    drops_dtt_per_drop_cells: int = Field(default=4, ge=1)
    temperature_c: float = 37.0
    minutes: int = Field(default=45, ge=1)


class LabProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    profile_id: str = "default"
    name: str = "Shipped default lab profile"
    version: str = "1"

    # A. exposure windows (R-A2, R-A3, R-A4)
    window_months: dict[WindowKey, Months] = Field(
        default_factory=lambda: {
            "daratumumab": 6,
            "isatuximab": 6,
            "felzartamab": 6,
            "mezagitamab": 6,
            "magrolimab": 6,
            UNKNOWN_ANTI_CD38: 6,
        }
    )
    agent_profiles: dict[str, HandlingProfile] = Field(default_factory=dict)
    unknown_agent_profile: HandlingProfile = "anti-CD38"
    # B. baseline (R-B1..B3)
    baseline_required: Literal["advisory", "hard_stop"] = "advisory"
    baseline_antigen_set: list[str] = Field(
        default_factory=lambda: ["C", "c", "E", "e", "K", "Fya", "Fyb", "Jka", "Jkb", "S", "s"]
    )
    baseline_prefer_genotype: bool = False
    serologic_phenotype_invalid_if_transfused_within_days: int = Field(default=90, ge=0)
    post_exposure_valid_typing_methods: list[TypingMethod] = Field(
        default_factory=lambda: list[TypingMethod](["genotype", "serology-direct"])
    )
    # C. IAT flags (R-C1, R-C2, R-C4)
    post_window_panreactive_action: Literal["suggest_dtt", "irl_referral"] = "suggest_dtt"
    iat_strength_warning_grade: int = Field(default=3, ge=1, le=4)
    analyser_carryover_warning: bool = False
    carryover_analysers: list[str] = Field(default_factory=lambda: ["IH-1000"])
    # D. DTT and Kell (R-D1..D5)
    dtt_available: bool = True
    dtt_protocol: DttProtocol = Field(default_factory=DttProtocol)
    dtt_cell_expiry_days: int = Field(default=7, ge=1)
    dtt_sensitive_antigens: list[str] = Field(default_factory=_dtt_default)
    method_destroyed_antigens: dict[ResolvingMethod, list[str]] = Field(default_factory=dict)
    k_rule_methods: list[TreatmentMethod] = Field(
        default_factory=lambda: list[TreatmentMethod](["DTT", "TCEP"])
    )
    extra_matching_policy: Literal["none", "rh_k", "extended"] = "none"
    # E. crossmatch (R-E1)
    crossmatch_mode_when_dtt_screen_negative: Literal["ELECTRONIC", "IMMEDIATE_SPIN", "AHG_DTT"] = (
        "ELECTRONIC"
    )
    sample_validity_days: int = Field(default=3, ge=0)
    current_order_hours: int = Field(default=72, ge=1)
    # G. no DTT (R-G1)
    no_dtt_workflow: Literal["irl_referral", "matched_units"] = "irl_referral"
    no_dtt_matched_antigens: list[str] = Field(
        default_factory=lambda: ["D", "C", "c", "E", "e", "K"]
    )
    irl_referral_lab: str = "Immunohaematology Reference Laboratory"
    # H. emergency (R-H1)
    emergency_prefer_k_neg: bool = True
    emergency_k_neg_search_limit_minutes: int = Field(default=0, ge=0)
    # J. IFE (R-J*)
    ife_window_months: Months = 6
    ife_agents: list[AgentKey] = Field(
        default_factory=lambda: ["daratumumab", "isatuximab", "elotuzumab"]
    )
    hydrashift_available: dict[KitAgent, bool] = Field(
        default_factory=lambda: {"daratumumab": True, "isatuximab": True}
    )
    mass_spec: Literal["in_house", "send_out", "none"] = "send_out"
    mass_spec_send_out_code: str | None = None
    mspike_threshold_g_dl: float = Field(default=0.25, gt=0, le=5)
    spep_negative_ife_positive_triggers_reflex: bool = True
    auto_confirm_new_igg_kappa_band: bool = False
    # K. terminology (R-K3): "system|code" -> labflow concept (agent name, LOINC, ...)
    local_codes: dict[SystemCode, str] = Field(default_factory=dict)

    _hash: str = PrivateAttr(default="")

    @property
    def content_hash(self) -> str:
        private = self.__pydantic_private__ or {}
        cached: str = private.get("_hash", "")
        if not cached:
            cached = canonical_hash(self.model_dump(mode="json"))
            self._hash = cached
        return cached

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    def window_for(self, agent: str, route: str | None) -> int:
        """Interference window in months: per-route override (R-A3), agent, or R-A4 default."""
        if route:
            specific = self.window_months.get(f"{agent}_{route.lower()}")
            if specific is not None:
                return specific
        months = self.window_months.get(agent)
        if months is not None:
            return months
        known = load_protocol().agents.get(agent)
        if known is not None:
            return known.default_window_months
        return self.window_months.get(UNKNOWN_ANTI_CD38, 6)


_TYPE_WORDS = {
    "int_parsing": "a valid integer",
    "int_type": "a valid integer",
    "int_from_float": "a valid integer",
    "float_parsing": "a valid number",
    "float_type": "a valid number",
    "bool_parsing": "a valid boolean",
    "bool_type": "a valid boolean",
    "string_type": "a valid string",
    "list_type": "a valid list",
    "dict_type": "a valid mapping",
    "model_type": "a valid mapping",
}


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"] if p != "[key]")
    value = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key (value {value!r})"
    if kind in _TYPE_WORDS:
        return f"{path}: {value!r} is not {_TYPE_WORDS[kind]}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return f"{path}: {message}"
    return f"{path}: {value!r}: {message}"


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def profile_from_mapping(data: Mapping[str, Any] | None) -> LabProfile:
    """Defaults overlaid with `data` (deep-merged maps, replaced lists), validated."""
    if data is None:
        return LabProfile()
    if not isinstance(data, Mapping):
        raise ProfileError([f"<profile>: {data!r} is not a mapping of keys to values"])
    merged = _merge(LabProfile().model_dump(mode="json"), data)
    try:
        return LabProfile.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError([_describe(e) for e in exc.errors()]) from None


def load_profile(path: str | Path | None = None) -> LabProfile:
    """The effective profile: shipped defaults overlaid with the file at `path` (if any)."""
    source = Path(path) if path is not None else DEFAULT_PROFILE_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError([f"<file>: {str(source)!r} cannot be read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError([f"<file>: {str(source)!r} is not valid YAML ({exc})"]) from None
    return profile_from_mapping(data if data is not None else {})
