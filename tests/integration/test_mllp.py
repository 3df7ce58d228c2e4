"""The MLLP listener over a real TCP socket: store first, ACK second, then the pipeline."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import hl7
import pytest
from sqlalchemy import func, select

from labflow.db import session_scope
from labflow.mllp import (
    END_BLOCK,
    START_BLOCK,
    BackgroundMllpServer,
    Frame,
    FrameParser,
    MllpServer,
    Rejected,
    frame,
)
from labflow.models import Decision, InboundMessage
from tests.support import message_status, wait_for

from .conftest import hl7_message, new_control_id

INTERFACE = "mllp"


@pytest.fixture()
def listener() -> Iterator[BackgroundMllpServer]:
    server = BackgroundMllpServer(MllpServer("127.0.0.1", 0, interface=INTERFACE)).start()
    yield server
    server.stop(grace=5)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes go out alone
    return sock


def read_acks(sock: socket.socket, count: int = 1) -> list[hl7.Message]:
    """Read `count` framed answers; fail on a timeout rather than hang."""
    buffer, acks = b"", []
    while len(acks) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(acks)} of {count} ACKs"
        buffer += chunk
        while (end := buffer.find(bytes([END_BLOCK, 0x0D]))) >= 0:
            start = buffer.index(START_BLOCK)
            acks.append(hl7.parse(buffer[start + 1 : end].decode()))
            buffer = buffer[end + 2 :]
    return acks


def msa(ack: hl7.Message) -> tuple[str, str]:
    seg = ack.segment("MSA")
    return str(seg[1]), str(seg[2])


def rows(**where: str) -> list[InboundMessage]:
    with session_scope() as s:
        query = select(InboundMessage).where(
            *(getattr(InboundMessage, k) == v for k, v in where.items())
        )
        return list(s.scalars(query))


def test_ack_echoes_msh10_after_the_message_is_stored(listener, embedded_worker, mrn) -> None:
    control_id = new_control_id()
    body = hl7_message("oru_antibody_screen_dtt.hl7", mrn=mrn, control_id=control_id)
    with connect(listener.port) as sock:
        sock.sendall(frame(body))
        (ack,) = read_acks(sock)
        # Looked up the moment the ACK arrives, without waiting: storage came first.
        (stored,) = rows(interface=INTERFACE, control_id=control_id)
    assert msa(ack) == ("AA", control_id)
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK"
    assert str(ack.segment("MSH")[5]) == "LIS"  # sender and receiver swapped
    assert stored.body == body
    assert (stored.content_type, stored.mrn) == ("application/hl7-v2", mrn)
    assert stored.webhook_id.startswith("mllp-")
    wait_for(lambda: message_status(stored.id) == "processed")
    with session_scope() as s:
        decision = s.scalars(select(Decision).where(Decision.message_id == stored.id)).one()
    assert decision.rules_fired


def test_resend_of_the_same_message_is_acknowledged_and_not_stored_again(listener, mrn) -> None:
    control_id = new_control_id()
    body = hl7_message("oru_serology.hl7", mrn=mrn, control_id=control_id)
    with connect(listener.port) as sock:
        sock.sendall(frame(body))
        first = read_acks(sock)[0]
    with connect(listener.port) as sock:  # the LIS timed out, reconnected and resent
        sock.sendall(frame(body))
        second = read_acks(sock)[0]
    assert msa(first) == msa(second) == ("AA", control_id)
    assert len(rows(interface=INTERFACE, control_id=control_id)) == 1


def test_msh10_reused_with_another_body_is_quarantined_and_answered_ae(listener, mrn) -> None:
    control_id = new_control_id()
    body = hl7_message("oru_serology.hl7", mrn=mrn, control_id=control_id)
    changed = body.replace(b"O POS", b"A NEG")
    with connect(listener.port) as sock:
        sock.sendall(frame(body) + frame(changed))
        first, second = read_acks(sock, 2)
    assert msa(first) == ("AA", control_id)
    assert msa(second) == ("AE", control_id)
    assert "different body" in str(second.segment("ERR")[8])
    statuses = sorted(m.status for m in rows(interface=INTERFACE, control_id=control_id))
    assert len(statuses) == 2 and statuses[1] == "quarantined"  # the first one is applied


def test_broken_hl7_is_kept_parked_and_answered_ae_with_err(listener) -> None:
    control_id = new_control_id()
    body = (
        f"MSH|^~\\&|LIS|HOSP|LABFLOW|LAB|20260302101500||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r"
        "PID|1||4411223^^^HOSP^PI\r"  # no MR identifier: there is no patient to apply it to
        "OBR|1||ACC1|890-4^Screen^LN|||20260302093000\r"
        "OBX|1|CWE|890-4^Screen^LN||POS^Positive^L||||||F\r"
    ).encode()
    with connect(listener.port) as sock:
        sock.sendall(frame(body))
        (ack,) = read_acks(sock)
        (stored,) = rows(interface=INTERFACE, control_id=control_id)
    assert msa(ack) == ("AE", control_id)
    err = ack.segment("ERR")
    assert str(err[2]) == "PID^1^3" and str(err[3]).startswith("101^")
    assert stored.status == "parked"
    assert stored.errors and stored.body == body


def test_two_messages_in_one_write_get_two_acks_in_order(listener, embedded_worker, mrn) -> None:
    ids = [new_control_id(), new_control_id()]
    first = hl7_message("ras_daratumumab.hl7", mrn=mrn, control_id=ids[0])
    second = hl7_message("oru_antibody_screen_dtt.hl7", mrn=mrn, control_id=ids[1])
    with connect(listener.port) as sock:
        sock.sendall(frame(first) + b"\r\n" + frame(second))  # padding between frames is fine
        acks = read_acks(sock, 2)
    assert [msa(a) for a in acks] == [("AA", ids[0]), ("AA", ids[1])]
    stored = [rows(interface=INTERFACE, control_id=c)[0].id for c in ids]
    for message_id in stored:
        wait_for(lambda m=message_id: message_status(m) == "processed")


def test_message_split_across_many_writes(listener, mrn) -> None:
    control_id = new_control_id()
    data = frame(hl7_message("oru_ife.hl7", mrn=mrn, control_id=control_id))
    # Cut inside the start block's neighbourhood, mid-segment and between 0x1C and 0x0D.
    cuts = [0, 1, 7, 60, len(data) // 2, len(data) - 1, len(data)]
    with connect(listener.port) as sock:
        for a, b in itertools.pairwise(cuts):
            sock.sendall(data[a:b])
            time.sleep(0.02)
        (ack,) = read_acks(sock)
    assert msa(ack) == ("AA", control_id)
    (stored,) = rows(interface=INTERFACE, control_id=control_id)
    assert stored.body == data[1:-2]


def test_unframed_bytes_are_rejected_and_the_connection_recovers(listener, mrn) -> None:
    control_id = new_control_id()
    with connect(listener.port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        (rejected,) = read_acks(sock)
        sock.sendall(frame(hl7_message("oru_serology.hl7", mrn=mrn, control_id=control_id)))
        (ack,) = read_acks(sock)
    assert msa(rejected) == ("AR", '""')
    assert "outside an MLLP frame" in str(rejected.segment("ERR")[8])
    assert msa(ack) == ("AA", control_id)


def test_unframed_hl7_is_rejected_with_its_control_id(listener, mrn) -> None:
    control_id = new_control_id()
    with connect(listener.port) as sock:
        sock.sendall(hl7_message("oru_serology.hl7", mrn=mrn, control_id=control_id))
        (ack,) = read_acks(sock)
    assert msa(ack) == ("AR", control_id)
    assert rows(interface=INTERFACE, control_id=control_id) == []


def test_oversized_frame_is_rejected_unstored_and_the_next_one_accepted(mrn) -> None:
    server = BackgroundMllpServer(
        MllpServer("127.0.0.1", 0, interface=INTERFACE, max_body_bytes=2000)
    ).start()
    try:
        big_id, ok_id = new_control_id(), new_control_id()
        big = hl7_message("oru_serology.hl7", mrn=mrn, control_id=big_id)
        big += b"NTE|1|L|" + b"x" * 5000 + b"\r"
        ok = hl7_message("ras_daratumumab.hl7", mrn=mrn, control_id=ok_id)
        with connect(server.port) as sock:
            sock.sendall(frame(big) + frame(ok))
            rejected, accepted = read_acks(sock, 2)
    finally:
        server.stop(grace=5)
    assert msa(rejected) == ("AR", big_id)
    assert "exceeds the 2000-byte limit" in str(rejected.segment("ERR")[8])
    assert rows(interface=INTERFACE, control_id=big_id) == []
    assert msa(accepted) == ("AA", ok_id)


def test_many_concurrent_connections(listener, mrn) -> None:
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def client(control_id: str) -> None:
        try:
            with connect(listener.port) as sock:
                sock.sendall(
                    frame(hl7_message("ras_daratumumab.hl7", mrn=mrn, control_id=control_id))
                )
                code, echoed = msa(read_acks(sock)[0])
                results[echoed] = code
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    ids = [new_control_id() for _ in range(12)]
    threads = [threading.Thread(target=client, args=(c,)) for c in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert results == dict.fromkeys(ids, "AA")
    with session_scope() as s:
        stored = s.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.control_id.in_(ids))  # type: ignore[union-attr]
        )
    assert stored == len(ids)


def test_shutdown_lets_a_message_being_stored_get_its_ack(mrn) -> None:
    slow_started = threading.Event()
    holder: dict[str, MllpServer] = {}

    def slow_store(body: bytes):  # the database is slow at the moment we shut down
        slow_started.set()
        time.sleep(0.5)
        return holder["server"]._receive(body)

    server = MllpServer("127.0.0.1", 0, interface=INTERFACE, store=slow_store)
    holder["server"] = server
    background = BackgroundMllpServer(server).start()
    control_id = new_control_id()
    idle = connect(background.port)
    with connect(background.port) as sock:
        sock.sendall(frame(hl7_message("oru_serology.hl7", mrn=mrn, control_id=control_id)))
        assert slow_started.wait(5)
        stopper = threading.Thread(target=background.stop, kwargs={"grace": 5})
        stopper.start()
        (ack,) = read_acks(sock)
        assert sock.recv(1024) == b""  # then the listener closes the connection
    stopper.join(10)
    assert msa(ack) == ("AA", control_id)
    assert idle.recv(1024) == b""  # an idle connection is simply closed
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", background.port), timeout=1).close()


def test_logs_carry_no_patient_identifiers_or_content(listener, mrn) -> None:
    from structlog.testing import capture_logs

    control_id = new_control_id()
    body = hl7_message("oru_antibody_screen_dtt.hl7", mrn=mrn, control_id=control_id)
    with capture_logs() as logs, connect(listener.port) as sock:
        sock.sendall(b"junk " + mrn.encode() + frame(body))
        read_acks(sock, 2)
    assert {e["event"] for e in logs} >= {"mllp.rejected", "mllp.stored"}
    text = repr(logs)
    assert mrn not in text and "Doe" not in text and control_id not in text


# -- the de-framer on its own ---------------------------------------------------------------


def test_parser_handles_any_split_and_bad_framing() -> None:
    data = (
        b"junk"
        + frame(b"MSH|one")
        + b"\r\n"
        + frame(b"")
        + b"\x0bMSH|cut short"  # the sender restarted mid-frame
        + b"\x0bMSH|two\x1c"  # 0x1C without the 0x0D
        + frame(b"MSH|" + b"x" * 100)
    )
    expected = [
        Rejected("garbage", b"junk", 4),
        Frame(b"MSH|one"),
        Rejected("empty", b"", 0),
        Rejected("interrupted", b"MSH|cut short", 13),
        Frame(b"MSH|two"),
    ]
    for size in (1, 2, 3, 5, 64, len(data)):
        parser = FrameParser(max_bytes=50)
        events = [e for i in range(0, len(data), size) for e in parser.feed(data[i : i + size])]
        *head, oversized = events
        assert head[1:] == expected[1:], size
        assert isinstance(head[0], Rejected) and head[0].problem == "garbage"
        assert isinstance(oversized, Rejected) and oversized.problem == "oversized"
        assert oversized.size == 104 and oversized.head.startswith(b"MSH|x")


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    import socket

    background = BackgroundMllpServer(MllpServer("127.0.0.1", 0, idle_timeout=0.3)).start()
    try:
        with socket.create_connection(("127.0.0.1", background.port), timeout=5) as sock:
            assert sock.recv(1) == b""  # the server hung up on the idle peer
    finally:
        background.stop()
