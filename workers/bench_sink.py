"""Where the benchmark's no-op task notes its run times: Redis, or a list in this process."""

from __future__ import annotations

from functools import lru_cache

import redis

LOCAL: list[float] = []
KEY = "labflow:bench:noop"


@lru_cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def note(sink: str, at: float) -> None:
    if sink == "local":
        LOCAL.append(at)
    else:
        _client(sink).rpush(KEY, at)
