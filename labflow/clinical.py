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
    return _code_maps(get_settings().lab_profile)


@lru_cache
def _code_maps(path: str | None) -> CodeMaps:
    # Built once per profile, not once per message: every ingest and every task needs it.
    return CodeMaps(drug_codes=protocol().drug_codes(), local_codes=_profile(path).local_codes)


def reset() -> None:
    protocol.cache_clear()
    _profile.cache_clear()
    _code_maps.cache_clear()
