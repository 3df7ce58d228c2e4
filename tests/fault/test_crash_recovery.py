"""Nothing accepted is lost or applied twice, whatever crashes.

PostgreSQL + a real Redis + separate `labflow worker` processes: 1,000 messages, one worker
killed with SIGKILL mid-run, Redis restarted once. Then the same restart test on the embedded
default (SQLite + in-process worker): the whole service is killed and started again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.fault.corpus import messages
from tests.processes import (
    PrivateRedis,
    Proc,
    free_port,
    labflow_command,
    service_env,
    wait_http,
)
from tests.support import INTERFACE, SECRET, postgres_admin_url, require_service, signed_headers

pytestmark = pytest.mark.fault


def _post_all(base: str, bodies: list[bytes], threads: int = 4) -> list[str]:
    def post(body: bytes) -> str:
        for _ in range(50):  # the service may be restarting: the sender retries, same id
            headers = signed_headers(
                body, "application/json", webhook_id="ft_" + hashlib.sha1(body).hexdigest()[:20]
            )
            try:
                response = httpx.post(
                    f"{base}/api/v1/inbound/{INTERFACE}", content=body, headers=headers, timeout=10
                )
                if response.status_code in (200, 202):
                    return str(response.json()["message_id"])
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("could not deliver a message")

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, bodies))


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM inbound_message GROUP BY status"))
        counts = {status: n for status, n in rows}
        counts["decisions"] = conn.execute(text("SELECT count(*) FROM decision")).scalar_one()
        counts["max_per_message"] = conn.execute(
            text(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM decision "
                "GROUP BY message_id) AS per_message"
            )
        ).scalar_one()
    engine.dispose()
    return counts


def _wait_until_finished(url: str, total: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = _counts(url)
        if counts.get("processed", 0) + counts.get("parked", 0) >= total:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"not finished in {timeout}s: {counts}")
        time.sleep(1)


def _audit_verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*labflow_command(), "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _check_outcome(counts: dict[str, int], total: int) -> None:
    assert counts.get("processed", 0) + counts.get("parked", 0) == total, counts
    assert counts["max_per_message"] == 1, "a message produced two decisions"
    assert counts["decisions"] == counts.get("processed", 0), counts


@pytest.fixture()
def postgres_database():
    import psycopg

    require_service("postgres")
    name = f"labflow_fault_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_admin_url(name, driver="postgresql+psycopg")
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_redis_workers_survive_kill_and_broker_restart(
    postgres_database, tmp_path: Path
) -> None:
    require_service("redis")
    redis = PrivateRedis().start()
    port = free_port()
    env = service_env(
        LABFLOW_DATABASE_URL=postgres_database,
        LABFLOW_BROKER_URL=redis.url,
        LABFLOW_INBOUND_SECRETS=json.dumps({INTERFACE: SECRET}),
        LABFLOW_SWEEP_INTERVAL_SECONDS="2",
        LABFLOW_STALE_AFTER_SECONDS="5",
        LABFLOW_CLAIM_LEASE_SECONDS="10",
    )
    cmd = labflow_command()
    api = Proc([*cmd, "serve", "--port", str(port)], env, tmp_path / "api.log").start()
    worker_cmd = [*cmd, "worker", "--pool", "solo"]
    workers = [Proc(worker_cmd, env, tmp_path / f"worker{i}.log").start() for i in range(2)]
    beat = Proc([*cmd, "beat"], env, tmp_path / "beat.log").start()
    total = 1000
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        bodies = messages(total)
        _post_all(f"http://127.0.0.1:{port}", bodies[:400])
        time.sleep(1.0)
        workers[0].kill9()  # mid-run: it holds a claim and maybe an unacked message
        _post_all(f"http://127.0.0.1:{port}", bodies[400:700])
        redis.restart()  # every queued id is gone; the database still has the messages
        workers[0] = Proc(worker_cmd, env, tmp_path / "worker0-restarted.log").start()
        _post_all(f"http://127.0.0.1:{port}", bodies[700:])
        counts = _wait_until_finished(postgres_database, total, timeout=420)
    finally:
        for proc in (api, beat, *workers):
            proc.stop()
        redis.stop()
    _check_outcome(counts, total)
    assert counts.get("parked", 0) == 0, f"valid messages were parked: {counts}"
    verified = _audit_verify(env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit chain intact" in verified.stdout


def test_embedded_default_finishes_accepted_work_after_a_hard_restart(tmp_path: Path) -> None:
    port = free_port()
    database = f"sqlite:///{tmp_path / 'labflow.db'}"
    env = service_env(
        LABFLOW_DATABASE_URL=database,
        LABFLOW_INBOUND_SECRETS=json.dumps({INTERFACE: SECRET}),
        LABFLOW_SWEEP_INTERVAL_SECONDS="1",
        LABFLOW_STALE_AFTER_SECONDS="5",
        LABFLOW_CLAIM_LEASE_SECONDS="10",
    )
    serve = [*labflow_command(), "serve", "--port", str(port)]
    total = 300
    bodies = messages(total, patients=60, seed=11)
    service = Proc(serve, env, tmp_path / "serve.log").start()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        _post_all(f"http://127.0.0.1:{port}", bodies[:200])
        service.kill9()  # accepted work is in the database; the in-memory queue is gone
        service = Proc(serve, env, tmp_path / "serve-restarted.log").start()
        wait_http(f"http://127.0.0.1:{port}/healthz")
        _post_all(f"http://127.0.0.1:{port}", bodies[200:])
        counts = _wait_until_finished(database, total, timeout=240)
    finally:
        service.stop()
    _check_outcome(counts, total)
    assert counts.get("parked", 0) == 0, counts
    verified = _audit_verify(env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
