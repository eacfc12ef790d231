"""A database for the runtime benchmarks, holding the current emit and two earlier ones:

- the runtime's schema `fastapi_pg_sse`, as `fastapi_pg_sse.schema.apply_migrations` applies
  it (the SQL the installed runtime ships, never a copy): `fastapi_pg_sse.emit(CURRENT, ...)`,
  ids given in commit order;
- `bench_user_lock`, a channel as scaffold 0.4.0 generated it (`baseline/user_lock_0.4.sql`):
  a table of its own and a row lock per user, held until commit;
- `bench_before`, a channel as fastapi-pg-sse 0.2 generated it (`baseline/channel_lock_0.2.sql`):
  one advisory lock per channel, held until commit.
"""

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fastapi_pg_sse.testing import embedded_postgres, execute, schema_database

BENCH = Path(__file__).resolve().parent
BASELINE = BENCH / "baseline"
CHANNEL_LOCK = "bench_before"
"""0.2's channel, as `baseline/channel_lock_0.2.sql` names it: `bench_before_emit(...)`."""
USER_LOCK = "bench_user_lock"
"""0.4's channel, as `baseline/user_lock_0.4.sql` names it: `bench_user_lock_emit(...)`."""
CURRENT = "bench_after"
"""The current emit's channel: `fastapi_pg_sse.emit('bench_after', ...)`."""


@contextmanager
def bench_database() -> Iterator[str]:
    """A new database with the runtime's schema and both earlier channels, on `DATABASE_URL`'s
    server or an embedded one."""
    with ExitStack() as stack:
        server = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres())
        url = stack.enter_context(schema_database(server))
        for baseline in ("channel_lock_0.2.sql", "user_lock_0.4.sql"):
            asyncio.run(execute(url, (BASELINE / baseline).read_text()))
        yield url
