"""Load the shipped protocol once, hash it, and build its lookups (R-K3 code index)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from protocols.model import Lookup, Protocol

DATA_DIR = Path(__file__).parent / "data"
PROTOCOL_FILE = DATA_DIR / "anti_cd38.yaml"


def canonical_hash(data: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace): stable across runs and platforms."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _index(protocol: Protocol) -> None:
    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    labflow_systems = protocol.code_systems.get("labflow", ())
    for name, agent in protocol.agents.items():
        names[name.lower()] = name
        for alias in agent.aliases:
            names[alias.lower()] = name
        for system in labflow_systems:  # contract: LF code = agent name
            codes[f"{system}|{name}"] = name
        for system_key, values in agent.codes.items():
            for system in protocol.code_systems[system_key]:
                for value in values:
                    codes[f"{system}|{value}"] = name
    antigen_system = {
        antigen: affected.system
        for method in protocol.methods.values()
        for affected in method.affected
        for antigen in affected.antigens
    }
    content_hash = canonical_hash(protocol.model_dump(mode="json"))
    protocol._lookup = Lookup(
        content_hash,
        codes,
        names,
        antigen_system,
        resolving_methods=frozenset(
            m for m, spec in protocol.methods.items() if spec.resolves_anti_cd38
        ),
        insignificant=frozenset(
            s.lower() for s in protocol.clinically_insignificant_specificities
        ),
    )


def _check(protocol: Protocol) -> None:
    for name, agent in protocol.agents.items():
        unknown = set(agent.codes) - set(protocol.code_systems)
        if unknown:
            raise ValueError(f"agents.{name}.codes: unknown code systems {sorted(unknown)}")
    if "UNTREATED" not in protocol.methods or "DTT" not in protocol.methods:
        raise ValueError("methods: UNTREATED and DTT are required")


def parse_protocol(data: Any) -> Protocol:
    protocol = Protocol.model_validate(data)
    _check(protocol)
    _index(protocol)
    return protocol


@cache
def load_protocol() -> Protocol:
    """The shipped protocol, validated and indexed once per process."""
    with PROTOCOL_FILE.open(encoding="utf-8") as fh:
        return parse_protocol(yaml.safe_load(fh))
