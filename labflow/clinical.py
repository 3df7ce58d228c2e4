"""The protocol and the lab profile in force, loaded once per process."""

from __future__ import annotations

from functools import lru_cache

from labflow.interop.model import CodeMaps
from labflow.settings import get_settings
from protocols import LabProfile, Protocol, load_profile, load_protocol


@lru_cache
def protocol() -> Protocol:
    return load_protocol()


@lru_cache
def _profile(path: str | None) -> LabProfile:
    return load_profile(path)


def profile() -> LabProfile:
    return _profile(get_settings().lab_profile)


def code_maps() -> CodeMaps:
    return CodeMaps(drug_codes=protocol().drug_codes(), local_codes=profile().local_codes)


def reset() -> None:
    protocol.cache_clear()
    _profile.cache_clear()
