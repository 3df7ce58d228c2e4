"""R1 ingest overhead: signed inbound webhooks/s of labflow vs a bare FastAPI route, same run.

Numerator: `labflow serve` (verify Standard Webhooks signature, dedupe lookup, map/validate,
inbox + audit commit on a fresh PostgreSQL database, enqueue to a private Redis with no workers
running, 202). Denominator: bench/bare_app.py (same body read, 202, nothing else), both under
uvicorn with one process. The servers are pinned to CPU 0 and the load generator
(bench/load.py, a separate process per round) to CPU 1 when `taskset` exists.

(a) saturation: closed loop, N connections, interleaved rounds ours, bare, ours, bare, ...;
    median req/s for each, and the ratio (target >= 0.5), for FHIR and for HL7 v2;
(b) acknowledgement latency at a paced open-loop rate (50/s) against ours (target p99 < 50 ms).

Every message carries a unique webhook-id, MRN and control id (FHIR Bundle.identifier, HL7
MSH-10), signed just before its round. Every response must be 202; anything else is counted
and printed.

    python bench/ingest.py [--quick] [--concurrency 32] [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.processes import (  # noqa: E402
    PrivateRedis,
    Proc,
    free_port,
    labflow_command,
    service_env,
    wait_http,
)

INTERFACE = "bench"
SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0xMjM0"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
FIXTURES = ROOT / "tests" / "fixtures"
# Fixtures that map cleanly (the rest are parked on purpose by the interop tests).
FHIR_FILES = [
    "antibody_screen_message.json",
    "medication_administration.json",
    "medication_request.json",
    "medication_statement_bundle.json",
    "mprotein_collection.json",
    "orders_batch.json",
    "serology_transaction.json",
    "transfusion_procedure.json",
]
HL7_FILES = [
    "oml_ife_suspected_cr.hl7",
    "orm_type_and_screen.hl7",
    "oru_antibody_screen_dtt.hl7",
    "oru_ife.hl7",
    "oru_serology.hl7",
    "ras_daratumumab.hl7",
    "rde_isatuximab.hl7",
]
SERVER_CPU, CLIENT_CPU = "0", "1"
P99_TARGET_MS, RATIO_TARGET = 50.0, 0.5


def fhir_templates() -> list[str]:
    out = []
    for name in FHIR_FILES:
        doc = json.loads((FIXTURES / "fhir" / name).read_text())
        if isinstance(doc.get("identifier"), dict) and "value" in doc["identifier"]:
            doc["identifier"]["value"] = "@CTL@"
        out.append(json.dumps(doc, separators=(",", ":")).replace("MRN123", "@MRN@"))
    return out


def hl7_templates() -> list[str]:
    out = []
    for name in HL7_FILES:
        segments = (FIXTURES / "hl7" / name).read_text().strip().splitlines()
        msh = segments[0].split("|")
        msh[9] = "@CTL@"  # MSH-10 (MSH-1 is the separator itself)
        segments[0] = "|".join(msh)
        out.append("\r".join(segments).replace("MRN123", "@MRN@") + "\r")
    return out


@dataclass
class Target:
    name: str
    port: int
    unique: bool  # needs never-seen webhook ids (ours); the bare app may cycle its corpus


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.next_index = 0
        self.pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
        nonce = uuid.uuid4().hex[:6]
        self.specs: dict[str, Path] = {}
        for fmt, content_type, templates in (
            ("fhir", "application/fhir+json", fhir_templates()),
            ("hl7", "application/hl7-v2", hl7_templates()),
        ):
            path = workdir / f"{fmt}.json"
            path.write_text(
                json.dumps({"content_type": content_type, "templates": templates, "nonce": nonce})
            )
            self.specs[fmt] = path

    def pinned(self, cpu: str, command: list[str]) -> list[str]:
        return ["taskset", "-c", cpu, *command] if self.pin else command

    def load(self, target: Target, fmt: str, mode: str, seconds: float) -> dict[str, Any]:
        """One load-generator process; returns its JSON summary."""
        args = self.args
        count = int(seconds * args.max_rate) if target.unique else 5000
        if mode == "open":
            count = int(seconds * args.rate)
        command = [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            f"--port={target.port}",
            f"--spec={self.specs[fmt]}",
            f"--secret={SECRET}",
            f"--interface={INTERFACE}",
            f"--mode={mode}",
            f"--concurrency={args.concurrency}",
            f"--duration={seconds}",
            f"--rate={args.rate}",
            f"--start={self.next_index}",
            f"--count={count}",
        ]
        if not target.unique:
            command.append("--cycle")
        done = subprocess.run(
            self.pinned(CLIENT_CPU, command), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"load generator failed:\n{done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout)
        self.next_index += count  # ids stay unique across rounds
        if result.get("exhausted"):
            print(f"    note: corpus of {count} exhausted; raise --max-rate", flush=True)
        return result


def _server_env(database_url: str, broker_url: str) -> dict[str, str]:
    return service_env(
        LABFLOW_DATABASE_URL=database_url,
        LABFLOW_BROKER_URL=broker_url,
        LABFLOW_INBOUND_SECRETS=json.dumps({INTERFACE: SECRET}),
        LABFLOW_SWEEP_INTERVAL_SECONDS="3600",
    )


def _environment(database_url: str) -> list[str]:
    import psycopg

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    return [
        f"cpu: {cpu} x {os.cpu_count()}   python {platform.python_version()}",
        f"postgresql {pg[0] if pg else '?'} (fsync={fsync[0] if fsync else '?'}, "
        f"synchronous_commit={sync[0] if sync else '?'}); redis private, no Celery workers",
    ]


def _stored(database_url: str, broker_url: str) -> tuple[dict[str, int], int]:
    import psycopg
    import redis

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        query = "SELECT status, count(*) FROM inbound_message GROUP BY status"
        rows = conn.execute(query).fetchall()
    queued = int(redis.Redis.from_url(broker_url).llen("labflow"))  # type: ignore[arg-type]
    return {status: count for status, count in rows}, queued


def run(args: argparse.Namespace) -> int:
    import psycopg

    name = f"labflow_bench_{uuid.uuid4().hex[:8]}"
    database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    broker = PrivateRedis().start()
    workdir = Path(tempfile.mkdtemp(prefix="labflow-ingest-"))
    bench = Bench(args, workdir)
    env = _server_env(database_url, broker.url)
    ours = Target("labflow", free_port(), unique=True)
    bare = Target("bare", free_port(), unique=False)
    procs = [
        Proc(
            bench.pinned(SERVER_CPU, [*labflow_command(), "serve", f"--port={ours.port}"]),
            env,
            workdir / "labflow.log",
        ),
        Proc(
            bench.pinned(
                SERVER_CPU,
                [sys.executable, str(ROOT / "bench" / "bare_app.py"), f"--port={bare.port}"],
            ),
            env,
            workdir / "bare.log",
        ),
    ]
    failures = 0
    try:
        for proc in procs:
            proc.start()
        wait_http(f"http://127.0.0.1:{ours.port}/healthz")
        wait_http(f"http://127.0.0.1:{bare.port}/healthz")
        print(f"ingest benchmark (R1), logs in {workdir}")
        for line in _environment(database_url):
            print("  " + line)
        print(
            f"  pinning: {'servers CPU 0, load generator CPU 1' if bench.pin else 'none'}; "
            f"{args.concurrency} connections, {args.rounds} x {args.seconds:g} s rounds each, "
            f"open loop {args.rate:g}/s for {args.latency_seconds:g} s",
            flush=True,
        )
        table: list[dict[str, Any]] = []
        for fmt in args.formats:
            table.append(measure(bench, fmt, ours, bare))
        stored, queued = _stored(database_url, broker.url)
        failures = report(table, stored, queued)
    finally:
        for proc in procs:
            proc.stop()
        broker.stop()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return failures


def measure(bench: Bench, fmt: str, ours: Target, bare: Target) -> dict[str, Any]:
    args = bench.args
    rates: dict[str, list[float]] = {"labflow": [], "bare": []}
    bad: Counter[str] = Counter()
    non_202 = ours_acks = 0

    def tally(target: Target, result: dict[str, Any], label: str) -> None:
        nonlocal non_202, ours_acks
        errors = sum(result["errors"].values())
        unanswered = result["sent"] - result["completed"] - errors if "sent" in result else 0
        non_202 += result["non_202"] + errors + unanswered
        bad.update({f"{label}: {s}": n for s, n in result["bad_samples"].items()})
        bad.update({f"{label}: connection {e}": n for e, n in result["errors"].items()})
        if target is ours:
            ours_acks += result["statuses"].get("202", 0)

    print(f"\n[{fmt}] warm-up", flush=True)
    for target in (ours, bare):
        tally(target, bench.load(target, fmt, "closed", args.warmup), f"{target.name} warm-up")
    for i in range(args.rounds):
        for target in (ours, bare):
            result = bench.load(target, fmt, "closed", args.seconds)
            rates[target.name].append(result["rps"])
            tally(target, result, target.name)
            print(
                f"  round {i + 1} {target.name:>7}: {result['rps']:8.1f} req/s "
                f"(p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                f"n={result['completed']}, non-202={result['non_202']}, "
                f"errors={result['errors'] or 0})",
                flush=True,
            )
    latency = bench.load(ours, fmt, "open", args.latency_seconds)
    tally(ours, latency, "labflow open loop")
    print(
        f"  open loop {args.rate:g}/s: p50 {latency['p50_ms']:.1f} ms, "
        f"p99 {latency['p99_ms']:.1f} ms, max {latency['max_ms']:.1f} ms, "
        f"{latency['completed']}/{latency['sent']} answered, "
        f"{latency['connections']} connections",
        flush=True,
    )
    pair_ratios = [o / b for o, b in zip(rates["labflow"], rates["bare"], strict=True) if b]
    return {
        "format": fmt,
        "ours": statistics.median(rates["labflow"]),
        "bare": statistics.median(rates["bare"]),
        "ratio_min": min(pair_ratios),
        "ratio_max": max(pair_ratios),
        "p50": latency["p50_ms"],
        "p99": latency["p99_ms"],
        "non_202": non_202,
        "bad": bad,
        "ours_acks": ours_acks,
    }


def report(table: list[dict[str, Any]], stored: dict[str, int], queued: int) -> int:
    print("\n" + "=" * 96)
    print(
        f"{'format':<7}{'labflow req/s':>15}{'bare req/s':>12}{'ratio':>8}{'(min-max)':>14}"
        f"{'target':>8}{'p50 ms':>9}{'p99 ms':>9}{'target':>8}{'non-202':>9}"
    )
    failures = 0
    for row in table:
        ratio = row["ours"] / row["bare"] if row["bare"] else 0.0
        ok_ratio = ratio >= RATIO_TARGET
        ok_p99 = row["p99"] < P99_TARGET_MS
        valid = row["non_202"] == 0
        failures += (not ok_ratio) + (not ok_p99) + (not valid)
        spread = f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f})"
        print(
            f"{row['format']:<7}{row['ours']:>15.1f}{row['bare']:>12.1f}{ratio:>8.2f}"
            f"{spread:>14}"
            f"{'ok' if ok_ratio else 'MISS':>8}{row['p50']:>9.1f}{row['p99']:>9.1f}"
            f"{'ok' if ok_p99 else 'MISS':>8}{row['non_202']:>9}"
            + ("" if valid else "  INVALID (non-202 answers)")
        )
    print("=" * 96)
    print(
        f"targets: ratio >= {RATIO_TARGET} (median of interleaved rounds), p99 < "
        f"{P99_TARGET_MS:g} ms at the paced rate, absolute >= 200 msg/s, every response 202"
    )
    acks = sum(row["ours_acks"] for row in table)
    print(f"labflow 202s: {acks}; inbox rows by status: {stored}; Celery jobs queued: {queued}")
    if stored.get("accepted", 0) != acks or queued != acks:
        print("WARNING: inbox rows / queued jobs do not match the 202 answers")
        failures += 1
    for row in table:
        for sample, count in row["bad"].items():
            print(f"non-202 [{row['format']}] {count} x {sample}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short rounds (about a minute)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of interleaved rounds")
    parser.add_argument("--seconds", type=float, default=10.0, help="closed-loop round length")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=50.0, help="open-loop messages/s")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--max-rate", type=float, default=3000.0, help="corpus size per labflow round / seconds"
    )
    parser.add_argument("--formats", default="fhir,hl7")
    args = parser.parse_args()
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if args.quick:
        args.rounds, args.seconds, args.warmup, args.latency_seconds = 2, 3.0, 1.0, 6.0
    started = time.monotonic()
    failures = run(args)
    print(f"total {time.monotonic() - started:.0f} s")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
