"""A benchmark scenario: data set sizes, how to build the data, the baseline and ours, the target."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.support import services


@dataclass
class Scenario:
    name: str
    # run(size, repeat) -> list of result rows (dicts: scenario, baseline_s, ours_s, figure, target, met,
    # worst_ping_ms, peak_rss_mb, note).
    runner: Callable
    repeat: int = 3
    sizes: dict = field(default_factory=dict)

    def run(self, size, repeat):
        return self.runner(self.sizes[size], repeat)


@contextmanager
def private_servers(persistent_redis=False):
    """A Redis and a PostgreSQL of the benchmark's own (the demo stack and the tests keep theirs)."""
    redis_server = services.RedisServer(password="bench-redis-pw", persistent=persistent_redis).start()
    pg = services.PostgresServer(password="bench-db-pw").start()
    pg.load_schema()
    try:
        yield redis_server, pg
    finally:
        redis_server.kill()
        shutil.rmtree(redis_server.data_dir, ignore_errors=True)
        pg.destroy()
