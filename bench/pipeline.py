"""End-to-end pipeline throughput vs a bare no-op Celery task on the same broker, same run.

A backlog (the outage-replay case) is loaded with the workers stopped, then the workers start:
    pipeline rate = messages / (last decision committed - first decision committed)
    no-op rate    = tasks / (last no-op run - first no-op run)
Modes: `embedded` (SQLite + in-process threads worker, in-memory broker) and `production`
(PostgreSQL + Redis + two `labflow worker --pool solo` processes).

    python bench/pipeline.py [--messages 2000] [--mode embedded|production|both]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fault.corpus import messages  # noqa: E402
from tests.processes import PrivateRedis, Proc, labflow_command, service_env  # noqa: E402

INTERFACE = "bench"
SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0xMjM0"


def _configure(database_url: str, broker_url: str | None) -> None:
    os.environ.update(
        {
            "LABFLOW_DATABASE_URL": database_url,
            "LABFLOW_INBOUND_SECRETS": json.dumps({INTERFACE: SECRET}),
            "LABFLOW_SWEEP_INTERVAL_SECONDS": "3600",
        }
    )
    if broker_url:
        os.environ["LABFLOW_BROKER_URL"] = broker_url
    else:
        os.environ.pop("LABFLOW_BROKER_URL", None)
    from labflow import clinical, jobs
    from labflow.db import engine_for
    from labflow.settings import get_settings

    get_settings.cache_clear()
    engine_for.cache_clear()
    jobs._producer.cache_clear()
    clinical.reset()
    from labflow.logs import configure_logging
    from labflow.migrate import upgrade

    configure_logging(logging.WARNING)
    upgrade()


def _load_backlog(count: int) -> None:
    from labflow.db import session_scope
    from labflow.services.inbox import receive

    for body in messages(count, patients=max(50, count // 10), seed=3):
        with session_scope() as session:
            receive(
                session,
                interface=INTERFACE,
                webhook_id=f"b_{uuid.uuid4().hex}",
                content_type="application/json",
                body=body,
                max_body_bytes=1_000_000,
            )


def _pipeline_rate(count: int, timeout: float = 600) -> float:
    from sqlalchemy import func, select

    from labflow.db import session_scope
    from labflow.models import InboundMessage

    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as s:
            done = s.scalar(select(func.count()).where(InboundMessage.status == "processed"))
            if done >= count:
                first, last = s.execute(
                    select(
                        func.min(InboundMessage.processed_at), func.max(InboundMessage.processed_at)
                    )
                ).one()
                return count / max((last - first).total_seconds(), 1e-6)
        if time.monotonic() > deadline:
            raise SystemExit(f"pipeline did not finish: {done}/{count}")
        time.sleep(0.5)


def _noop_rate(times: list[float]) -> float:
    return len(times) / max(max(times) - min(times), 1e-6)


def embedded(count: int) -> tuple[float, float]:
    from labflow import jobs
    from workers import bench_sink, embedded

    with tempfile.TemporaryDirectory() as tmp:
        _configure(f"sqlite:///{tmp}/bench.db", None)
        for _ in range(count):
            jobs.send_now(jobs.BENCH_NOOP, "local")
        _load_backlog(count)
        worker = embedded.start()
        try:
            rate = _pipeline_rate(count)
            while len(bench_sink.LOCAL) < count:
                time.sleep(0.1)
        finally:
            worker.stop()
        return rate, _noop_rate(bench_sink.LOCAL)


def production(count: int, workers: int = 2, pool: str = "solo", threads: int = 1
               ) -> tuple[float, float]:
    import psycopg
    import redis

    from labflow import jobs

    name = f"labflow_bench_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    broker = PrivateRedis().start()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    procs: list[Proc] = []
    try:
        _configure(url, broker.url)
        env = service_env(**{k: v for k, v in os.environ.items() if k.startswith("LABFLOW_")})
        log_dir = Path(tempfile.mkdtemp())

        def start_workers() -> None:
            procs.extend(
                Proc(
                    [*labflow_command(), "worker", "--pool", "solo"], env, log_dir / f"w{i}.log"
                ).start()
                for i in range(workers)
            )

        def stop_workers() -> None:
            for p in procs:
                p.stop()
            procs.clear()

        for _ in range(count):
            jobs.send_now(jobs.BENCH_NOOP, broker.url)
        start_workers()
        client = redis.Redis.from_url(broker.url)
        while client.llen("labflow:bench:noop") < count:
            time.sleep(0.2)
        noop = _noop_rate([float(t) for t in client.lrange("labflow:bench:noop", 0, -1)])
        stop_workers()
        _load_backlog(count)
        start_workers()
        rate = _pipeline_rate(count)
        return rate, noop
    finally:
        for p in procs:
            p.stop()
        broker.stop()
        from labflow.db import engine_for

        engine_for.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--mode", choices=["embedded", "production", "both"], default="both")
    parser.add_argument("--pool", choices=["solo", "threads", "prefork"], default="threads",
                        help="pool of each of the two production worker processes")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="tasks in flight per production worker process")
    args = parser.parse_args()
    print(f"pipeline benchmark: {args.messages} messages, {os.cpu_count()} cores")
    modes = ["embedded", "production"] if args.mode == "both" else [args.mode]
    for mode in modes:
        if mode == "embedded":
            rate, noop = embedded(args.messages)
        else:
            rate, noop = production(args.messages, pool=args.pool, threads=args.concurrency)
        print(
            f"{mode:>10}: pipeline {rate:8.1f} msg/s | no-op task {noop:8.1f} tasks/s | "
            f"ratio {rate / noop:.2f}"
        )
    print("targets: production >= 200 msg/s and ratio > 0.3")


if __name__ == "__main__":
    main()
