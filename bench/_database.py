"""A database for the runtime benchmarks holding two versions of a channel: `bench_before`, as
fastapi-pg-sse 0.2 generated it (`baseline/channel_lock_0.2.sql`), and `bench_after`, as the
generator writes it now (the runtime's pinned test migration, renamed)."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fastapi_pg_sse.testing import embedded_postgres, migrated_database

BENCH = Path(__file__).resolve().parent
CURRENT_MIGRATION = (
    BENCH.parent / "fastapi-pg-sse" / "tests" / "migrations" / "0001_test_feed_sse_channel.sql"
)
BEFORE, AFTER = "bench_before", "bench_after"


@contextmanager
def bench_database() -> Iterator[str]:
    """A new database with both channels, on `DATABASE_URL`'s server or an embedded one."""
    with ExitStack() as stack:
        server = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres())
        migrations = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (migrations / "1_before.sql").write_text(
            (BENCH / "baseline" / "channel_lock_0.2.sql").read_text()
        )
        (migrations / "2_after.sql").write_text(
            CURRENT_MIGRATION.read_text().replace("test_feed", AFTER)
        )
        yield stack.enter_context(migrated_database(server, migrations))
