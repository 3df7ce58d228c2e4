"""Facts about one patient: the evaluator's only input.

Each fact is a small frozen record with the clinical time it refers to (`effective`). The same
models are the items of labflow's own JSON inbound schema, and what the FHIR and HL7 v2 mappers
produce, so one vocabulary runs from the wire to the rules.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Methods of treating reagent cells or plasma before an IAT (contract: screen `method`).
TreatmentMethod = Literal["UNTREATED", "DTT", "TCEP", "TRYPSIN", "CD38-NEUTRALIZATION"]
TypingMethod = Literal["serology-direct", "serology-iat", "genotype"]
Phase = Literal["IS", "RT", "IAT"]
Route = Literal["IV", "SC"]


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    effective: datetime = Field(description="Clinical time the fact refers to (never wall clock).")
    source_ref: str | None = Field(
        default=None, description="Identifier of the source record (accession, order number...)."
    )


class Therapy(_Fact):
    """One therapy record: an order (planned), a dose given, or an outside history statement."""

    kind: Literal["therapy"] = "therapy"
    agent: str = Field(description="Agent name from the contract, e.g. daratumumab.")
    route: Route | None = None
    record: Literal["planned", "administered", "history"] = "administered"
    first_dose: date | None = None
    last_dose: date | None = None
    ongoing: bool = False
    product: str | None = None
    evidence_source: str | None = Field(
        default=None, description="pharmacy-order, eMAR, external-record, alert-card..."
    )


class AntibodyScreen(_Fact):
    """An antibody screen (or panel cells) result: overall interpretation plus cell grades."""

    kind: Literal["antibody_screen"] = "antibody_screen"
    interpretation: Literal["positive", "negative"]
    cells: dict[str, str] = Field(
        default_factory=dict, description="Cell label (I, II, III, ...) -> grade (0, w+, 1+ .. 4+)."
    )
    auto_control: str | None = None
    phase: Phase = "IAT"
    method: TreatmentMethod = "UNTREATED"
    analyser: str | None = None


class AntibodyIdentification(_Fact):
    """Antibodies identified on a panel (current) or reported from history."""

    kind: Literal["antibody_identification"] = "antibody_identification"
    specificities: tuple[str, ...] = Field(description="anti-E, anti-K, anti-Yta, or panreactive")
    method: TreatmentMethod = "UNTREATED"
    historical: bool = False


class DirectAntiglobulin(_Fact):
    kind: Literal["dat"] = "dat"
    positive: bool


class AboRh(_Fact):
    kind: Literal["abo_rh"] = "abo_rh"
    group: str | None = Field(default=None, description="e.g. O POS, A NEG")
    reverse_unexpected_reactions: bool = False


class AntigenTyping(_Fact):
    """Red-cell antigen typing of the patient (serology or genotype)."""

    kind: Literal["antigen_typing"] = "antigen_typing"
    antigen: str = Field(description="K, E, c, Fya ...")
    positive: bool
    method: TypingMethod = "serology-direct"


class Transfusion(_Fact):
    """An RBC transfusion given to the patient (makes later serological phenotypes unreliable)."""

    kind: Literal["transfusion"] = "transfusion"


OrderCode = Literal[
    "TYPE_AND_SCREEN", "CROSSMATCH", "RBC", "PLT", "FFP", "EMERGENCY_RELEASE", "IFE"
]


class Order(_Fact):
    kind: Literal["order"] = "order"
    code: OrderCode
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    suspected_cr: bool = Field(default=False, description="Clinical suspicion of CR (IFE order).")


class MSpike(_Fact):
    kind: Literal["mspike"] = "mspike"
    g_dl: float = Field(ge=0)


class Immunofixation(_Fact):
    """Serum IFE: the bands seen (empty = negative)."""

    kind: Literal["ife"] = "ife"
    bands: tuple[str, ...] = ()
    comigrates_with_drug: bool | None = Field(
        default=None,
        description="Whether the IgG-kappa band co-migrates with the drug position (R-J3b/R-J7); "
        "None = not reported.",
    )


class MProteinIsotype(_Fact):
    """The patient's own (endogenous) M-protein isotype, e.g. IgG-kappa, IgA-lambda."""

    kind: Literal["mprotein_isotype"] = "mprotein_isotype"
    isotype: str


class ShiftResult(_Fact):
    """Result of a drug-specific shift assay or mass spectrometry."""

    kind: Literal["shift_result"] = "shift_result"
    assay: Literal["HYDRASHIFT_DARATUMUMAB", "HYDRASHIFT_ISATUXIMAB", "MASS_SPEC_MPROTEIN"]
    value: Literal["SHIFTED_COMPLETE", "RESIDUAL_BAND", "DETECTED", "NOT_DETECTED"]


Fact = Annotated[
    Therapy
    | AntibodyScreen
    | AntibodyIdentification
    | DirectAntiglobulin
    | AboRh
    | AntigenTyping
    | Transfusion
    | Order
    | MSpike
    | Immunofixation
    | MProteinIsotype
    | ShiftResult,
    Field(discriminator="kind"),
]


class ActiveRequirement(BaseModel):
    """A requirement already in force for the patient (so R-D4 can propose, never drop, it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    since: datetime


class PatientFacts(BaseModel):
    """Everything the evaluator may look at for one patient."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    facts: tuple[Fact, ...] = ()
    active_requirements: tuple[ActiveRequirement, ...] = ()
    trigger: Fact | None = Field(
        default=None, description="The fact whose arrival caused this evaluation, if any."
    )
