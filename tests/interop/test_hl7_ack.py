"""ACKs as the sending LIS sees them, checked with python-hl7 and hl7apy's v2.5 structures."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from labflow.interop.hl7_ack import build_ack
from labflow.interop.hl7_in import hl7_header, map_hl7
from labflow.interop.model import CodeMaps, MappingError

from .conftest import hl7_bytes

NOW = datetime(2026, 3, 2, 10, 16, tzinfo=UTC)


def _valid(ack: str) -> hl7.Message:
    strict = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert strict.validate()
    return hl7.parse(ack)


def test_aa_echoes_control_id_and_swaps_applications() -> None:
    header = hl7_header(hl7_bytes("oru_antibody_screen_dtt.hl7"))
    ack = build_ack(header, "AA", now=NOW)
    assert "\n" not in ack and ack.count("\r") == 2
    msg = _valid(ack)
    msh = msg.segment("MSH")
    assert [str(msh[i]) for i in (3, 4, 5, 6)] == ["LABFLOW", "LAB", "LIS", "HOSP"]
    assert str(msh[7]) == "20260302101600+0000"
    assert str(msh[9]) == "ACK^R01^ACK"
    assert str(msh[10]) and str(msh[10]) != "LIS000451"  # a new control id
    assert str(msh[12]) == "2.5.1"  # same version as the inbound message
    assert str(msg.segment("MSA")[1]) == "AA"
    assert str(msg.segment("MSA")[2]) == "LIS000451"
    assert "ERR" not in ack


def test_ae_for_a_message_that_did_not_map_has_one_err_per_error() -> None:
    body = hl7_bytes("oru_local_codes.hl7").replace(b"|P|2.4", b"|P|2.5")
    with pytest.raises(MappingError) as info:
        map_hl7(body, CodeMaps())
    ack = build_ack(hl7_header(body), "AE", [*info.value.errors, "second | problem ^ & ~ \\"])
    msg = _valid(ack)
    assert str(msg.segment("MSA")[1]) == "AE"
    assert str(msg.segment("MSA")[2]) == "WP1234"
    assert str(msg.segment("MSA")[3]).startswith("OBX #1 OBX-3: unknown code")
    errs = msg.segments("ERR")
    assert len(errs) == 2
    assert str(errs[0][3]) == "103^Table value not found^HL70357"  # unknown code
    assert str(errs[0][4]) == "E"
    assert "unknown code 'L|GPS2'" in errs[0].extract_field(field_num=8)
    # special characters are escaped, and read back intact
    assert errs[1].extract_field(field_num=8) == "second | problem ^ & ~ \\"
    assert str(errs[1][3]) == "207^Application internal error^HL70357"


@pytest.mark.parametrize(("error", "code", "location"), [
    ("no patient MRN: PID-3 has no identifier of type MR", "101", "PID^1^3"),
    ("MSH-10 message control ID is empty", "101", "MSH^1^10"),
    ("OBX #1 OBX-14: '2026-03' is not an HL7 timestamp", "102", ""),
    ("unsupported message type ADT^A01 (labflow reads ...)", "200", ""),
])
def test_err_codes_follow_table_0357(error: str, code: str, location: str) -> None:
    header = hl7_header(hl7_bytes("oru_serology.hl7"))
    err = hl7.parse(build_ack(header, "AE", [error])).segment("ERR")
    assert str(err[3]).split("^")[0] == code
    assert str(err[2]) == location


def test_ar_for_garbage_still_builds_a_valid_ack() -> None:
    header = hl7_header(b"not hl7 at all")
    assert header is None
    ack = build_ack(header, "AR", ["not an HL7 v2 message: it must start with an MSH segment"])
    msg = _valid(ack)
    assert str(msg.segment("MSH")[9]) == "ACK^^ACK"
    assert str(msg.segment("MSA")[2]) == '""'  # HL7 null: there is no MSH-10 to echo
    assert str(msg.segment("MSA")[1]) == "AR"
    assert len(msg.segments("ERR")) == 1


def test_ack_for_v23_sender_keeps_its_version() -> None:
    body = hl7_bytes("orm_type_and_screen.hl7").replace(b"|P|2.5", b"|T|2.3")
    msh = hl7.parse(build_ack(hl7_header(body), "AA")).segment("MSH")
    assert (str(msh[11]), str(msh[12]), str(msh[9])) == ("T", "2.3", "ACK^O01^ACK")


def test_v24_sender_gets_a_v24_err_segment() -> None:
    body = hl7_bytes("oru_local_codes.hl7")  # MSH-12 2.4: ERR has only ERR-1 (ELD)
    ack = build_ack(hl7_header(body), "AE", ["no patient MRN: PID-3 has no identifier of type MR"])
    msg = _valid(ack)
    assert str(msg.segment("MSH")[12]) == "2.4"
    assert str(msg.segment("ERR")[1]) == "PID^1^3^101&Required field missing&HL70357"
