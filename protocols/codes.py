"""The output vocabulary of contract section 4. Codes may be added, never renamed or removed.

The collector checks every emitted code against these sets, so a typo in a rule fails loudly in
tests instead of leaking an unknown code into an LIS dictionary.
"""

from __future__ import annotations

from typing import Literal

FLAGS = frozenset(
    {
        "ANTI_CD38_ACTIVE",
        "ANTI_CD47_ACTIVE",
        "IFE_MAB_ACTIVE",
        "BASELINE_WORKUP_MISSING",
        "IAT_INTERFERENCE_SUSPECTED",
        "PANREACTIVE_NO_KNOWN_THERAPY",
        "PHENOTYPE_POSSIBLY_AFFECTED",
        "DTT_SENSITIVE_ANTIBODY_UNDETECTABLE",
        "DTT_RESISTANT_PANREACTIVITY",
        "ABO_REVERSE_MAY_BE_INVALID",
        "SCREEN_NOT_INTERPRETABLE",
        "EMERGENCY_RELEASE",
        "REQUIREMENT_REVIEW_DUE",
        "IFE_THERAPEUTIC_MAB_BAND",
        "IFE_INTERPRETATION_LIMITED",
        "IFE_NO_ENDOGENOUS_MPROTEIN",
        "IFE_RESIDUAL_MPROTEIN",
        "MPROTEIN_ISOTYPE_UNKNOWN",
        "MSPIKE_MAB_CONTRIBUTION",
    }
)

ANTIGEN_NEGATIVE_PREFIX = "ANTIGEN_NEGATIVE:"

REQUIREMENTS = frozenset(
    {
        "DTT_TREATED_SCREEN",
        "K_NEGATIVE_RBC",
        "EXTENDED_MATCH_RBC",
        "AHG_XM_DTT_DONOR_CELLS",
        "ELECTRONIC_XM_BLOCKED",
        "IRL_REFERRAL",
    }
)

REFLEX_ORDERS = frozenset(
    {
        "BASELINE_WORKUP",
        "RBC_GENOTYPE",
        "DTT_ANTIBODY_SCREEN",
        "DTT_ANTIBODY_ID_PANEL",
        "RETROSPECTIVE_DTT_SCREEN",
        "HYDRASHIFT_DARATUMUMAB",
        "HYDRASHIFT_ISATUXIMAB",
        "MASS_SPEC_MPROTEIN",
    }
)

CROSSMATCH_MODES = frozenset({"ELECTRONIC", "IMMEDIATE_SPIN", "AHG_DTT", "AHG"})

HandlingProfile = Literal["anti-CD38", "anti-CD47", "ife-only", "none"]
RBC_PROFILES = frozenset({"anti-CD38", "anti-CD47"})


def is_requirement(code: str) -> bool:
    return code in REQUIREMENTS or (
        code.startswith(ANTIGEN_NEGATIVE_PREFIX) and len(code) > len(ANTIGEN_NEGATIVE_PREFIX)
    )
