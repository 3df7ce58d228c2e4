"""Lab profile: defaults, partial files, deep merge, validation messages, hashing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocols import LabProfile, ProfileError, load_profile, load_protocol, profile_from_mapping
from protocols.catalog import DATA_DIR


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_default_file_equals_model_defaults() -> None:
    assert load_profile(None) == LabProfile()
    assert load_profile(DATA_DIR / "default_profile.yaml").content_hash == LabProfile().content_hash


def test_default_dtt_table_matches_protocol() -> None:
    assert LabProfile().dtt_sensitive_antigens == list(load_protocol().methods["DTT"].antigens())
    assert {"K", "Kpb", "Jsb", "Yta", "Doa", "Lub", "JMH", "Vel"} <= set(
        LabProfile().dtt_sensitive_antigens
    )


def test_partial_file_deep_merges_per_agent_maps(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "window_months: {isatuximab: 12}\n"
                                           "hydrashift_available: {isatuximab: false}\n"))
    assert profile.window_months["isatuximab"] == 12
    assert profile.window_months["daratumumab"] == 6
    assert profile.hydrashift_available == {"daratumumab": True, "isatuximab": False}
    assert profile.dtt_available is True


def test_lists_are_replaced_not_merged() -> None:
    profile = profile_from_mapping({"k_rule_methods": ["DTT"]})
    assert profile.k_rule_methods == ["DTT"]


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, "")) == LabProfile()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("window_months: {isatuximab: abc}",
         "window_months.isatuximab: 'abc' is not a valid integer"),
        ("window_months: {aspirin: 6}", "window_months.aspirin: 'aspirin' is not a known agent"),
        ("window_months: {daratumumab: 0}", "window_months.daratumumab: 0"),
        ("dtt_available: maybe", "dtt_available: 'maybe' is not a valid boolean"),
        ("crossmatch_mode_when_dtt_screen_negative: PHONE",
         "crossmatch_mode_when_dtt_screen_negative: 'PHONE'"),
        ("mass_spec: outsourced", "mass_spec: 'outsourced'"),
        ("mspike_threshold_g_dl: -1", "mspike_threshold_g_dl: -1"),
        ("hydrashift_available: {elotuzumab: true}",
         "hydrashift_available.elotuzumab: 'elotuzumab' is not an agent with a drug-specific"),
        ("local_codes: {DARA: daratumumab}", "local_codes.DARA: 'DARA' is not of the form"),
        ("colour: blue", "colour: unknown key (value 'blue')"),
        ("dtt_protocol: {minutes: x}", "dtt_protocol.minutes: 'x' is not a valid integer"),
        ("- just a list", "is not a mapping"),
    ],
)
def test_validation_errors_name_key_and_value(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text))
    assert fragment in str(info.value)


def test_several_errors_reported_together() -> None:
    with pytest.raises(ProfileError) as info:
        profile_from_mapping({"dtt_available": "x", "mass_spec": "y"})
    assert len(info.value.errors) == 2


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path / "missing.yaml")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(write(tmp_path, "a: [1,"))


def test_content_hash_changes_with_content_only() -> None:
    a = profile_from_mapping({"window_months": {"isatuximab": 12}})
    b = profile_from_mapping({"window_months": {"isatuximab": 12}})
    assert a.content_hash == b.content_hash
    assert a.content_hash != LabProfile().content_hash
    assert len(a.content_hash) == 64


def test_to_yaml_round_trips(tmp_path: Path) -> None:
    profile = profile_from_mapping({"dtt_available": False, "local_codes": {"LOCAL|ABSC": "890-4"}})
    text = profile.to_yaml()
    assert profile_from_mapping(yaml.safe_load(text)) == profile
    assert load_profile(write(tmp_path, text)).content_hash == profile.content_hash


def test_window_for_falls_back_to_unknown_default() -> None:
    profile = profile_from_mapping({"window_months": {"unknown_anti_cd38": 9}})
    assert profile.window_for("brand-new-mab", None) == 9
    assert profile.window_for("daratumumab", "SC") == 6


def test_protocol_identity() -> None:
    protocol = load_protocol()
    assert protocol.id == "anti-cd38-interference"
    assert len(protocol.content_hash) == 64
    assert protocol is load_protocol()  # loaded once
    assert set(protocol.agents) == {
        "daratumumab", "isatuximab", "felzartamab", "mezagitamab", "magrolimab", "elotuzumab"
    }
    assert protocol.agents["magrolimab"].isotype == "IgG4"
    assert protocol.agents["magrolimab"].profile == "anti-CD47"
    assert protocol.agents["elotuzumab"].profile == "ife-only"
