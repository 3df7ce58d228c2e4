"""Fixtures for integration tests over real sockets: MLLP listener, webhook receiver."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def hl7_message(name: str, *, mrn: str, control_id: str | None = None) -> bytes:
    """An HL7 fixture with `\\r` separators, this test's MRN and a fresh MSH-10.

    A fresh MSH-10 matters: the inbox dedupes on app+facility+MSH-10 per interface, so two
    tests sending the same file would otherwise see each other's message as a resend.
    """
    segments = (FIXTURES / "hl7" / name).read_text().strip("\n").split("\n")
    msh = segments[0].split("|")
    msh[9] = control_id or new_control_id()
    segments[0] = "|".join(msh)
    return "\r".join(segments).replace("MRN123", mrn).encode()


def new_control_id() -> str:
    return f"T{uuid.uuid4().hex[:19]}"  # HL7 MSH-10 is at most 20 characters


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint standing in for a subscriber; `mode` switches its answers."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    mode: str = "ok"  # ok | down (503) | gone (410)
    delay: float = 0.0  # seconds before answering (recorded on arrival)
    in_flight: int = 0
    most_in_flight: int = 0  # requests being answered at the same time, at most
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Random path: subscription URLs are unique and a later test may get the same port.
    path: str = field(default_factory=lambda: f"/hook/{uuid.uuid4().hex[:12]}")

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def accepted(self) -> list[Received]:
        """Requests this receiver answered 2xx (what the subscriber really got)."""
        with self.lock:
            return [r for r in self.requests if r.headers.get("x-test-answer") == "200"]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder["r"]
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            code = {"ok": 200, "down": 503, "gone": 410}[rec.mode]
            headers = {k.lower(): v for k, v in self.headers.items()}
            headers["x-test-answer"] = str(code)
            with rec.lock:
                rec.requests.append(Received(self.path, headers, body))
                rec.in_flight += 1
                rec.most_in_flight = max(rec.most_in_flight, rec.in_flight)
            time.sleep(rec.delay)
            with rec.lock:
                rec.in_flight -= 1
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["r"]
    server.shutdown()
    server.server_close()
