"""From scaffold and fastapi-pg-sse 0.5.0 (schema 1.0) to this version (schema 1.1).

scaffold 0.5.0, taken from this repository's history, generates a channel and a channel with a
trigger into a project whose migrations are applied, and events are emitted. Then the tool and
the runtime are upgraded: `scaffold check` reports the schema's new migration, `scaffold sync`
writes it, it is applied, and a server of this version resumes a client exactly, while a role
that only writes the application's table now emits through its trigger.
"""

import asyncio
import shutil
import uuid
from pathlib import Path

import pytest
from fastapi_pg_sse.testing import (
    connected,
    migrated_database,
    next_event,
    open_stream,
    payload_of,
    serve,
    sign_token,
)

from tests.golden_cases import TRIGGERED
from tests.helpers import (
    channel_test_count,
    extract_release,
    run_generated_tests,
    run_released_scaffold,
    run_scaffold,
)
from tests.test_upgrade_from_0_4 import LEVEL, LEVEL_STREAM, STOCK, STOCK_STREAM, apply

RELEASE_0_5 = "7ecee43abac6e34b8eb1d9615099d96e841729d4"
"""The last commit of scaffold and fastapi-pg-sse 0.5.0."""
SCHEMA_1_1 = "0004_fastapi_pg_sse_schema_1_1.sql"


async def emit_stock(database_url: str, user_id: str, n: int) -> int:
    """A stock event, emitted in SQL as schema 1.0 allows any role to: its id."""
    async with connected(database_url) as connection, connection.transaction():
        await connection.execute(
            "SELECT fastapi_pg_sse.emit('inventory_stock', $1, 'stock_updated', $2)",
            user_id,
            f'{{"n": {n}}}',
        )
        xact_id = await connection.fetchval("SELECT pg_current_xact_id()")
    async with connected(database_url) as connection:
        event_id: int = await connection.fetchval(
            "SELECT id FROM fastapi_pg_sse.events WHERE xact_id = $1", xact_id
        )
    return event_id


async def as_a_writer(database_url: str, statement: str, *arguments: object) -> None:
    """Run `statement` as a role with only the rights of `baskets` and its sequence."""
    role = f"basket_writer_{uuid.uuid4().hex[:8]}"
    async with connected(database_url) as owner:
        await owner.execute(
            f"CREATE ROLE {role}; GRANT SELECT, INSERT, UPDATE ON baskets TO {role};"
            f" GRANT USAGE ON SEQUENCE baskets_id_seq TO {role}"
        )
        try:
            async with owner.transaction():
                await owner.execute(f"SET LOCAL ROLE {role}")
                await owner.execute(statement, *arguments)
        finally:
            await owner.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_0_5_project_syncs_to_schema_1_1_keeping_its_events_and_clients(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, postgres_url: str
) -> None:
    release = extract_release(RELEASE_0_5, tmp_path_factory.mktemp("release-0.5"))
    project = Path(
        shutil.copytree(
            release / "examples" / "shop",
            tmp_path / "shop",
            ignore=shutil.ignore_patterns("demo.py", "frontend"),
        )
    )
    run_released_scaffold(release, project, "create-sse-channel", *STOCK)
    run_released_scaffold(release, project, "create-sse-channel", *LEVEL, *TRIGGERED)
    with migrated_database(postgres_url, project / "migrations") as database_url:
        seen = asyncio.run(emit_stock(database_url, "alice", 1))
        asyncio.run(emit_stock(database_url, "alice", 2))  # alice is away

        checked = run_scaffold("check", cwd=project)
        assert checked.exit_code == 1
        assert f"new schema  migrations/{SCHEMA_1_1} (fastapi-pg-sse's schema 1.1)" in (
            checked.stdout
        )
        synced = run_scaffold("sync", cwd=project)
        assert synced.exit_code == 0, synced.stdout + synced.stderr
        assert synced.stdout.endswith(f"\nApply migrations/{SCHEMA_1_1} to your database.\n")
        assert '"fastapi-pg-sse>=0.6,<1"' in (project / "pyproject.toml").read_text()
        assert run_scaffold("check", cwd=project).exit_code == 0
        asyncio.run(apply(database_url, [project / "migrations" / SCHEMA_1_1]))

        with serve("shop.main:app", project, {"DATABASE_URL": database_url}) as server:

            async def resume() -> list[tuple[str, object]]:
                async with (
                    open_stream(
                        server.url + STOCK_STREAM, sign_token("alice"), last_event_id=str(seen)
                    ) as to_alice,
                    open_stream(server.url + LEVEL_STREAM, sign_token("carol")) as to_carol,
                ):
                    missed = await next_event(to_alice)
                    await as_a_writer(
                        database_url, "INSERT INTO baskets (user_id, stock) VALUES ('carol', 7)"
                    )
                    emitted = await next_event(to_carol)
                return [(e.event, payload_of(e)) for e in (missed, emitted)]

            received = asyncio.run(resume())
    assert received == [
        ("stock_updated", {"n": 2}),
        ("stock_level_created", {"id": 1, "user_id": "carol", "stock": 7}),
    ], "what alice missed before the upgrade, then an event of a role with no schema right"
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0
