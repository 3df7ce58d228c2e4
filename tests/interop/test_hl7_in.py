"""HL7 v2 inbound: each message type and concept, framing variants, and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from labflow.interop.hl7_in import hl7_header, map_hl7
from labflow.interop.model import CodeMaps, MappingError
from protocols.facts import (
    AboRh,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    DirectAntiglobulin,
    Immunofixation,
    MProteinIsotype,
    MSpike,
    Order,
    ShiftResult,
    Therapy,
    Transfusion,
)

from .conftest import hl7_bytes

NO_CODES = CodeMaps()
CET = timezone(timedelta(hours=1))
MSH = "MSH|^~\\&|LIS|HOSP|LABFLOW|LAB|20260302101500||ORU^R01^ORU_R01|C1|P|2.5.1"
PID = "PID|1||MRN123^^^HOSP^MR"
OBR = "OBR|1||ACC1|890-4^Screen^LN|||20260302093000"


def _msg(*segments: str) -> bytes:
    return "\r".join(segments).encode()


def _errors(body: bytes, codes: CodeMaps = NO_CODES) -> str:
    with pytest.raises(MappingError) as info:
        map_hl7(body, codes)
    return "\n".join(info.value.errors)


# -- ORU^R01 ------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_antibody_screen_with_cells_and_dtt_method(sep: str) -> None:
    msg = map_hl7(hl7_bytes("oru_antibody_screen_dtt.hl7", sep), NO_CODES)
    assert msg.mrn == "MRN123"  # the MR repetition of PID-3, not the PI one before it
    assert (msg.message_type, msg.control_id, msg.sender) == ("ORU^R01", "LIS000451",
                                                              "LIS^HOSP")
    assert msg.accession == "ACC20260302-17"
    (screen,) = msg.facts
    assert isinstance(screen, AntibodyScreen)
    assert screen.interpretation == "positive"
    assert screen.cells == {"I": "0", "II": "w+", "III": "2+"}
    assert (screen.auto_control, screen.phase, screen.method) == ("0", "IAT", "DTT")
    assert screen.effective == datetime(2026, 3, 2, 9, 45, tzinfo=CET)  # OBX-14 with offset


def test_mllp_framing_is_stripped() -> None:
    framed = b"\x0b" + hl7_bytes("oru_antibody_screen_dtt.hl7") + b"\x1c\r"
    assert map_hl7(framed, NO_CODES).control_id == "LIS000451"


def test_phase_and_snomed_value() -> None:
    body = _msg(MSH, PID, OBR,
                "OBX|1|CWE|890-4^Screen^LN||260385009^Negative^SCT||||||F",
                "OBX|2|ST|phase^Phase^LF||RT||||||F")
    (screen,) = map_hl7(body, NO_CODES).facts
    assert isinstance(screen, AntibodyScreen)
    assert (screen.interpretation, screen.phase, screen.method) == ("negative", "RT",
                                                                    "UNTREATED")
    assert screen.effective == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # OBR-7 fallback


def test_sub_ids_keep_two_screens_in_one_obr_apart() -> None:
    body = _msg(MSH, PID, OBR,
                "OBX|1|CWE|890-4^Screen^LN|1|POS^Positive^L||||||F",
                "OBX|2|ST|screen-cell-I^Cell I^LF|1|3+||||||F",
                "OBX|3|CWE|890-4^Screen^LN|2|NEG^Negative^L||||||F||||||DTT^DTT^LF",
                "OBX|4|ST|screen-cell-I^Cell I^LF|2|0||||||F")
    untreated, dtt = map_hl7(body, NO_CODES).facts
    assert isinstance(untreated, AntibodyScreen) and isinstance(dtt, AntibodyScreen)
    assert (untreated.method, untreated.cells) == ("UNTREATED", {"I": "3+"})
    assert (dtt.method, dtt.interpretation, dtt.cells) == ("DTT", "negative", {"I": "0"})


def test_screen_cell_without_a_screen_is_rejected() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|ST|screen-cell-I^Cell I^LF||3+||||||F")
    assert "OBX #1: screen-cell-I has no 890-4 OBX in the same OBR" in _errors(body)


def test_serology_results() -> None:
    msg = map_hl7(hl7_bytes("oru_serology.hl7"), NO_CODES)
    abo, dat, ag_k, ag_e, abid, hist = msg.facts
    assert isinstance(abo, AboRh) and abo.group == "O POS"
    assert isinstance(dat, DirectAntiglobulin) and dat.positive is False
    assert isinstance(ag_k, AntigenTyping)
    assert (ag_k.antigen, ag_k.positive, ag_k.method) == ("K", False, "genotype")
    assert isinstance(ag_e, AntigenTyping)
    assert (ag_e.antigen, ag_e.positive, ag_e.method) == ("E", True, "serology-direct")
    assert isinstance(abid, AntibodyIdentification)
    assert abid.specificities == ("anti-E", "anti-Jka") and not abid.historical
    assert isinstance(hist, AntibodyIdentification)
    assert hist.historical and hist.specificities == ("anti-K",)
    assert hist.effective == datetime(2019, 5, 5, tzinfo=UTC)  # date-only TS


def test_mprotein_results() -> None:
    facts = map_hl7(hl7_bytes("oru_ife.hl7"), NO_CODES).facts
    mspike, ife, iso, shift, ms, ife_neg = facts
    assert isinstance(mspike, MSpike) and mspike.g_dl == pytest.approx(0.18)  # 1.8 g/L
    assert isinstance(ife, Immunofixation) and ife.bands == ("IgG-kappa", "kappa")
    assert isinstance(iso, MProteinIsotype) and iso.isotype == "IgA-lambda"
    assert isinstance(shift, ShiftResult)
    assert (shift.assay, shift.value) == ("HYDRASHIFT_DARATUMUMAB", "SHIFTED_COMPLETE")
    assert isinstance(ms, ShiftResult) and ms.value == "NOT_DETECTED"
    assert isinstance(ife_neg, Immunofixation) and ife_neg.bands == ()


def test_transfusion_observation() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|ST|transfusion^RBC transfusion^LF||1||||||F|||20260210")
    (fact,) = map_hl7(body, NO_CODES).facts
    assert isinstance(fact, Transfusion)


def test_deleted_result_rows_are_skipped_with_a_warning() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|CWE|1007-4^DAT^LN||POS||||||W",
                "OBX|2|CWE|1007-4^DAT^LN||NEG||||||C")
    msg = map_hl7(body, NO_CODES)
    (dat,) = msg.facts
    assert isinstance(dat, DirectAntiglobulin) and dat.positive is False
    assert msg.warnings == ("OBX #1: skipped (result status W: wrong patient/record)",)


def test_lab_timezone_applies_to_timestamps_without_offset() -> None:
    codes = CodeMaps(timezone="Europe/Berlin")
    (screen,) = map_hl7(_msg(MSH, PID, OBR, "OBX|1|CWE|890-4^S^LN||NEG||||||F"), codes).facts
    assert screen.effective == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


# -- orders -------------------------------------------------------------------------------


def test_orm_orders_priority_and_cancelled_orders() -> None:
    msg = map_hl7(hl7_bytes("orm_type_and_screen.hl7"), NO_CODES)
    assert msg.message_type == "ORM^O01"
    ts, xm, rbc = msg.facts
    assert isinstance(ts, Order) and (ts.code, ts.priority) == ("TYPE_AND_SCREEN", "stat")
    assert ts.effective == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # OBR-7
    assert ts.source_ref == "PLC1001"
    assert isinstance(xm, Order) and xm.code == "CROSSMATCH"
    assert isinstance(rbc, Order) and rbc.code == "RBC"
    assert msg.warnings == ("OBR #4: skipped (ORC-1 order control CA)",)


def test_oml_ife_with_suspected_cr_and_tq1_priority() -> None:
    msg = map_hl7(hl7_bytes("oml_ife_suspected_cr.hl7"), NO_CODES)
    ife, er, ffp = msg.facts
    assert isinstance(ife, Order) and (ife.code, ife.suspected_cr) == ("IFE", True)
    assert isinstance(er, Order)
    assert (er.code, er.priority, er.suspected_cr) == ("EMERGENCY_RELEASE", "stat", False)
    assert isinstance(ffp, Order) and ffp.code == "FFP"


def test_order_time_falls_back_to_orc9() -> None:
    body = _msg(MSH.replace("ORU^R01^ORU_R01", "ORM^O01"), PID,
                "ORC|NW|P1|||||||20260301120000", "OBR|1|P1||PLT^Platelets^LF")
    (order,) = map_hl7(body, NO_CODES).facts
    assert order.effective == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# -- pharmacy -----------------------------------------------------------------------------


def test_ras_dose_given() -> None:
    msg = map_hl7(hl7_bytes("ras_daratumumab.hl7"), NO_CODES)
    (dose,) = msg.facts
    assert isinstance(dose, Therapy)
    assert (dose.agent, dose.route, dose.record) == ("daratumumab", "SC", "administered")
    assert dose.first_dose == dose.last_dose == date(2026, 1, 5)
    assert dose.effective == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)  # RXA-3


def test_ras_refused_dose_is_not_a_dose() -> None:
    body = hl7_bytes("ras_daratumumab.hl7").replace(b"||CP", b"||RE")
    assert "skipped (RXA-20 completion status RE)" in _errors(body)


def test_rde_planned_therapy() -> None:
    (plan,) = map_hl7(hl7_bytes("rde_isatuximab.hl7"), NO_CODES).facts
    assert isinstance(plan, Therapy)
    assert (plan.agent, plan.route, plan.record) == ("isatuximab", "IV", "planned")
    assert plan.first_dose == date(2026, 6, 8)
    assert plan.effective == datetime(2026, 6, 1, 8, 55, tzinfo=UTC)  # ORC-9


def test_drug_code_map_and_atc_coding_system() -> None:
    body = hl7_bytes("ras_daratumumab.hl7").replace(b"L01FC01^Daratumumab SC 1800 mg^WC",
                                                    b"DARA18^Dara SC^99PHARM")
    codes = CodeMaps(drug_codes={"99PHARM|DARA18": "daratumumab"})
    (dose,) = map_hl7(body, codes).facts
    assert isinstance(dose, Therapy) and dose.agent == "daratumumab"
    assert "unknown drug code '99PHARM|DARA18'" in _errors(body)


# -- local codes --------------------------------------------------------------------------


def test_local_code_map() -> None:
    codes = CodeMaps(local_codes={"L|GPS2": "890-4", "L|GPS3": "screen-cell-I",
                                  "L|KELL": "antigen-K", "L|KNEG": "260385009"})
    screen, kell = map_hl7(hl7_bytes("oru_local_codes.hl7"), codes).facts
    assert isinstance(screen, AntibodyScreen)
    assert (screen.interpretation, screen.cells) == ("negative", {"I": "0"})
    assert isinstance(kell, AntigenTyping) and (kell.antigen, kell.positive) == ("K", False)


def test_unmapped_local_code_is_named() -> None:
    errors = _errors(hl7_bytes("oru_local_codes.hl7"))
    assert "OBX #1 OBX-3: unknown code 'L|GPS2'" in errors


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "empty message"),
    (b"PID|1||MRN123^^^HOSP^MR\rOBX|1", "it must start with an MSH segment"),
    (b"\x00\xff garbage \x13\x37", "it must start with an MSH segment"),
    (b"MSH|^~|LIS|HOSP\rPID|1", "MSH delimiters '|^~|L' are not valid"),
    (MSH.encode() + b"\rthis is not a segment", "segment 2 ('this is not a segmen') is not"),
    (MSH.replace("ORU^R01^ORU_R01", "ADT^A01").encode() + b"\r" + PID.encode(),
     "unsupported message type ADT^A01"),
    (MSH.replace("|C1|", "||").encode() + b"\r" + PID.encode(),
     "MSH-10 message control ID is empty"),
])
def test_broken_hl7_gives_a_readable_reason(body: bytes, reason: str) -> None:
    assert reason in _errors(body)


def test_no_mr_identifier() -> None:
    body = _msg(MSH, "PID|1||4411223^^^HOSP^PI", OBR, "OBX|1|CWE|890-4^S^LN||NEG||||||F")
    assert "no patient MRN: PID-3 has no identifier of type MR" in _errors(body)
    assert "no patient MRN" in _errors(_msg(MSH, OBR, "OBX|1|CWE|890-4^S^LN||NEG||||||F"))


def test_missing_clinical_time() -> None:
    body = _msg(MSH, PID, "OBR|1||ACC1|890-4^Screen^LN", "OBX|1|CWE|890-4^S^LN||NEG||||||F")
    assert "OBX #1: no clinical time (OBX-14 or OBR-7 is empty)" in _errors(body)


def test_malformed_timestamp() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|CWE|890-4^S^LN||NEG||||||F|||2026-03-02")
    assert "OBX #1 OBX-14: '2026-03-02' is not an HL7 timestamp" in _errors(body)


def test_unknown_observation_code() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F")
    assert "unknown code 'LN|2345-7'" in _errors(body)


def test_value_that_is_neither_positive_nor_negative() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|ST|1007-4^DAT^LN||maybe||||||F")
    assert "value 'maybe' is neither positive nor negative" in _errors(body)


def test_error_keeps_mrn_and_message_type() -> None:
    body = _msg(MSH, PID, OBR, "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F")
    with pytest.raises(MappingError) as info:
        map_hl7(body, NO_CODES)
    assert (info.value.mrn, info.value.message_type) == ("MRN123", "ORU^R01")


# -- header -------------------------------------------------------------------------------


def test_header_survives_a_message_that_does_not_map() -> None:
    body = _msg(MSH, "PID|1||4411223^^^HOSP^PI", "garbage")
    header = hl7_header(body)
    assert header is not None
    assert (header.sending_app, header.sending_facility, header.control_id) == ("LIS", "HOSP",
                                                                                "C1")
    assert (header.message_type, header.trigger, header.version) == ("ORU^R01", "R01", "2.5.1")
    assert header.dedupe_key == ("LIS", "HOSP", "C1")
    assert header.field_separator == "|"


def test_header_of_garbage_is_none() -> None:
    assert hl7_header(b"hello world") is None
    assert hl7_header(b"") is None


def test_coded_band_and_isotype_values_use_the_code() -> None:
    body = _msg(MSH, PID, "OBR|1||A2|25700-6^IFE^LN|||20260415",
                "OBX|1|CWE|25700-6^IFE^LN||IgG-kappa^IgG kappa band^LF||||||F",
                "OBX|2|CWE|mprotein-isotype^Isotype^LF||IgA-lambda^IgA lambda^LF||||||F")
    ife, iso = map_hl7(body, NO_CODES).facts
    assert isinstance(ife, Immunofixation) and ife.bands == ("IgG-kappa",)
    assert isinstance(iso, MProteinIsotype) and iso.isotype == "IgA-lambda"
