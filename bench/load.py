"""Load generator for bench/ingest.py: signed webhooks over raw keep-alive HTTP/1.1 (asyncio).

Runs as its own process (pinned to another CPU by the caller). Before the timed window it
builds and signs the whole request corpus from templates, so the window measures the server
only. Prints one JSON object with the results on stdout.

    closed loop:  --mode closed --concurrency 32 --duration 10
    open loop:    --mode open --rate 50 --duration 20   (latency from the *scheduled* send time,
                  so a slow server cannot hide its queueing: no coordinated omission)

A hand-rolled client rather than httpx: httpx costs ~0.3 ms of client CPU per request, which
would cap the bare-FastAPI denominator on one core and flatter the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_SAMPLES = 5  # distinct non-202 responses echoed back (truncated), with counts


@dataclass
class Result:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bad: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def note(self, status: int, body: bytes, latency: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency)
        if status != 202:
            sample = f"{status}: {body[:200]!r}"
            if sample in self.bad or len(self.bad) < MAX_SAMPLES:
                self.bad[sample] += 1


def build_requests(
    spec: dict[str, Any], *, host: str, interface: str, secret: str, start: int, count: int
) -> list[bytes]:
    """Raw HTTP requests with unique webhook ids, MRNs and control ids, signed now."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = str(int(time.time()))
    templates: list[str] = spec["templates"]
    head = (
        f"POST /api/v1/inbound/{interface} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: {spec['content_type']}\r\n"
    )
    nonce = spec["nonce"]
    out = []
    for i in range(start, start + count):
        body = (
            templates[i % len(templates)]
            .replace("@MRN@", f"BM{i % 5000:05d}")
            .replace("@CTL@", f"BC{nonce}{i:09d}")
            .encode()
        )
        msg_id = f"bench_{nonce}_{i}"
        digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        out.append(
            (
                f"{head}Content-Length: {len(body)}\r\nwebhook-id: {msg_id}\r\n"
                f"webhook-timestamp: {stamp}\r\n"
                f"webhook-signature: v1,{base64.b64encode(digest).decode()}\r\n\r\n"
            ).encode()
            + body
        )
    return out


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()
        marker = headers.find(b"\r\ncontent-length:")
        if marker >= 0:
            end = headers.index(b"\r\n", marker + 2)
            length = int(headers[marker + 17 : end])
            return status, await self.reader.readexactly(length)
        if b"transfer-encoding: chunked" in headers:
            return status, await self._chunked()
        raise RuntimeError("response without content-length or chunked encoding")

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(parts)

    def close(self) -> None:
        self.writer.close()


async def closed_loop(
    host: str, port: int, corpus: list[bytes], concurrency: int, duration: float, cycle: bool
) -> dict[str, Any]:
    result, nxt = Result(), 0
    conns = [await Conn.open(host, port) for _ in range(concurrency)]
    start = time.perf_counter()
    deadline = start + duration

    async def worker(conn: Conn) -> None:
        nonlocal nxt
        while time.perf_counter() < deadline:
            if nxt >= len(corpus) and not cycle:
                return
            raw = corpus[nxt % len(corpus)]
            nxt += 1
            sent = time.perf_counter()
            try:
                status, body = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
                conn.close()
                conn = await Conn.open(host, port)
                continue
            result.note(status, body, time.perf_counter() - sent)

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return _summary(result, elapsed, exhausted=not cycle and nxt >= len(corpus))


async def open_loop(
    host: str, port: int, corpus: list[bytes], rate: float, warm: int
) -> dict[str, Any]:
    result = Result()
    idle = [await Conn.open(host, port) for _ in range(warm)]
    opened = warm
    tasks: list[asyncio.Task[None]] = []

    async def fresh() -> Conn:
        nonlocal opened
        opened += 1
        return await Conn.open(host, port)

    async def one(raw: bytes, due: float) -> None:
        # Oldest idle connection first, so none sits past the server's keep-alive timeout.
        reused = bool(idle)
        conn = idle.pop(0) if idle else await fresh()
        try:
            try:
                status, body = await conn.send(raw)
            except (ConnectionResetError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                conn.close()  # closed by the server while idle: retry once, as clients do
                conn = await fresh()
                status, body = await conn.send(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            result.errors[type(exc).__name__] += 1
            conn.close()
            return
        result.note(status, body, time.perf_counter() - due)
        idle.append(conn)

    start = time.perf_counter()
    for i, raw in enumerate(corpus):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(raw, due)))
    await asyncio.wait(tasks, timeout=30)
    elapsed = time.perf_counter() - start
    for c in idle:
        c.close()
    return _summary(result, elapsed, sent=len(corpus), connections=opened)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(result: Result, elapsed: float, **extra: Any) -> dict[str, Any]:
    done = sum(result.statuses.values())
    lat = result.latencies
    return {
        "completed": done,
        "elapsed": elapsed,
        "rps": done / elapsed if elapsed else 0.0,
        "statuses": {str(k): v for k, v in result.statuses.items()},
        "non_202": done - result.statuses.get(202, 0),
        "bad_samples": dict(result.bad),
        "errors": dict(result.errors),
        "p50_ms": _pct(lat, 0.50) * 1000,
        "p90_ms": _pct(lat, 0.90) * 1000,
        "p99_ms": _pct(lat, 0.99) * 1000,
        "max_ms": max(lat, default=float("nan")) * 1000,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--spec", required=True, help="JSON: content_type, templates, nonce")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--interface", default="bench")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="open loop: requests/s")
    parser.add_argument("--start", type=int, default=0, help="first corpus index (unique ids)")
    parser.add_argument("--count", type=int, default=20000, help="closed loop: corpus size")
    parser.add_argument("--cycle", action="store_true", help="reuse the corpus when exhausted")
    args = parser.parse_args()

    with open(args.spec) as handle:
        spec = json.load(handle)
    count = int(args.rate * args.duration) if args.mode == "open" else args.count
    built = time.perf_counter()
    corpus = build_requests(
        spec,
        host=f"{args.host}:{args.port}",
        interface=args.interface,
        secret=args.secret,
        start=args.start,
        count=count,
    )
    build_seconds = time.perf_counter() - built
    try:
        from uvloop import run as run_loop
    except ImportError:
        run_loop = asyncio.run
    if args.mode == "closed":
        run = closed_loop(args.host, args.port, corpus, args.concurrency, args.duration, args.cycle)
    else:
        run = open_loop(args.host, args.port, corpus, args.rate, warm=4)
    summary = run_loop(run)
    summary["build_seconds"] = build_seconds
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
