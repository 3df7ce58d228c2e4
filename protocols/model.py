"""Schema of the shipped rule data (data/anti_cd38.yaml): frozen models, unknown keys rejected.

The models hold data only; derived lookups (code index, antigen -> system) are built once when
the protocol is loaded (catalog.py) so evaluation never recomputes them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from protocols.codes import HandlingProfile

Evidence = Literal["known-to-interfere", "reported-not-to-bind-rbc", "unknown"]
Effect = Literal["destroyed", "weakened", "partial", "variable"]
XmSituation = Literal[
    "anti_cd47",
    "no_dtt",
    "no_dtt_with_antibody",
    "dtt_resistant",
    "antibody_present",
    "dtt_screen_positive_unidentified",
    "dtt_screen_pending",
    "dtt_screen_negative",
    "resolved_screen_negative",
    "panreactive_no_therapy",
    "panreactive_post_window_dtt",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Agent(_Frozen):
    target: str
    isotype: str | None = Field(description="Drug isotype, e.g. IgG-kappa; None if unknown.")
    profile: HandlingProfile
    evidence: Evidence
    default_window_months: int = Field(ge=1, le=60)
    ife_kit: str | None = Field(default=None, description="Drug-specific shift assay reflex.")
    ife_band: str | None = None
    aliases: tuple[str, ...] = ()
    codes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="code-system key (see code_systems) -> codes"
    )


class AffectedSystem(_Frozen):
    system: str
    antigens: tuple[str, ...]
    effect: Effect
    evidence: str = ""


class Method(_Frozen):
    """A way of treating reagent cells or plasma (R-D2 / R-G2)."""

    resolves_anti_cd38: bool
    description: str = ""
    affected: tuple[AffectedSystem, ...] = ()

    def antigens(self) -> tuple[str, ...]:
        return tuple(a for s in self.affected for a in s.antigens)


class CrossmatchPolicy(_Frozen):
    mode: Literal["ELECTRONIC", "IMMEDIATE_SPIN", "AHG_DTT", "AHG"] | None = Field(
        description="None: the lab profile chooses (R-E1)."
    )
    electronic_allowed: bool | None = None
    rules: tuple[str, ...]
    explanation: str


class IfeRouting(_Frozen):
    drug_band_isotype: str
    max_mab_contribution_g_dl: float = Field(gt=0)
    fallback_reflex: str
    limited_comment: str


class Emergency(_Frozen):
    group_when_unknown: str
    explanation: str


class Protocol(_Frozen):
    id: str
    version: str
    title: str
    code_systems: dict[str, tuple[str, ...]] = Field(
        description="code-system key -> every accepted spelling (FHIR URI, HL7 v2 coding system)"
    )
    agents: dict[str, Agent]
    methods: dict[str, Method]
    crossmatch: dict[XmSituation, CrossmatchPolicy]
    ife: IfeRouting
    emergency: Emergency
    clinically_insignificant_specificities: tuple[str, ...] = ()

    _lookup: Lookup | None = PrivateAttr(default=None)

    @property
    def lookup(self) -> Lookup:
        """Derived tables, built once at load (catalog.py); read once per evaluation."""
        # Read the private store directly: pydantic's private-attribute __getattr__ is slow.
        found: Lookup | None = (self.__pydantic_private__ or {}).get("_lookup")
        if found is None:
            raise RuntimeError("protocol not indexed: load it with catalog.parse_protocol")
        return found

    @property
    def content_hash(self) -> str:
        return self.lookup.content_hash

    def drug_codes(self) -> dict[str, str]:
        """"system|code" -> agent name, for every accepted system spelling (R-K3)."""
        return dict(self.lookup.drug_codes)

    def resolve_agent(self, raw: str, local_codes: dict[str, str]) -> str:
        return self.lookup.resolve_agent(raw, local_codes)

    def system_of(self, antigen: str) -> str:
        return self.lookup.antigen_system.get(antigen, antigen)


class Lookup:
    """Plain-Python indexes over a Protocol (pydantic private-attribute access is slow)."""

    __slots__ = (
        "antigen_system",
        "content_hash",
        "drug_codes",
        "insignificant",
        "names",
        "resolving_methods",
        "systems_text",
    )

    def __init__(
        self,
        content_hash: str,
        drug_codes: dict[str, str],
        names: dict[str, str],
        antigen_system: dict[str, str],
        resolving_methods: frozenset[str] = frozenset(),
        insignificant: frozenset[str] = frozenset(),
    ) -> None:
        self.content_hash = content_hash
        self.drug_codes = drug_codes
        self.names = names
        self.antigen_system = antigen_system
        self.resolving_methods = resolving_methods  # methods with resolves_anti_cd38
        self.insignificant = insignificant  # clinically insignificant specificities, lower case
        self.systems_text: dict[tuple[str, ...], str] = {}  # memo: antigens -> "KEL/YT/..."

    def resolve_agent(self, raw: str, local_codes: dict[str, str]) -> str:
        """Agent name for a name, alias, brand or "system|code" (R-K3); else the raw name."""
        key = raw.strip()
        found = self.names.get(key.lower()) or self.drug_codes.get(key)
        if found:
            return found
        local = local_codes.get(key)
        if local:
            return self.names.get(local.lower(), local)
        return key.lower()

    def systems(self, antigens: list[str]) -> str:
        key = tuple(antigens)
        text = self.systems_text.get(key)
        if text is None:
            seen = dict.fromkeys(self.antigen_system.get(a, a) for a in antigens)
            text = self.systems_text[key] = "/".join(seen)
        return text
