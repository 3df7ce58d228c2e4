"""The anti-CD38 rule set as data plus a pure evaluator. Imports nothing from labflow."""

from protocols.catalog import load_protocol
from protocols.decision import Crossmatch, Decision, Finding, RuleFiring
from protocols.engine import evaluate
from protocols.exposure import Exposure, InterferenceSummary, exposures, interference_summary
from protocols.facts import (
    AboRh,
    ActiveRequirement,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    DirectAntiglobulin,
    Fact,
    Immunofixation,
    MProteinIsotype,
    MSpike,
    Order,
    PatientFacts,
    ShiftResult,
    Therapy,
    Transfusion,
)
from protocols.model import Protocol
from protocols.profile import LabProfile, ProfileError, load_profile, profile_from_mapping

__all__ = [
    "AboRh",
    "ActiveRequirement",
    "AntibodyIdentification",
    "AntibodyScreen",
    "AntigenTyping",
    "Crossmatch",
    "Decision",
    "DirectAntiglobulin",
    "Exposure",
    "Fact",
    "Finding",
    "Immunofixation",
    "InterferenceSummary",
    "LabProfile",
    "MProteinIsotype",
    "MSpike",
    "Order",
    "PatientFacts",
    "ProfileError",
    "Protocol",
    "RuleFiring",
    "ShiftResult",
    "Therapy",
    "Transfusion",
    "evaluate",
    "exposures",
    "interference_summary",
    "load_profile",
    "load_protocol",
    "profile_from_mapping",
]
