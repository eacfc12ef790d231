"""From scaffold and fastapi-pg-sse 0.5.0 (schema 1.0), 0.6.0 (schema 1.1), 0.7.0 (schema 1.2),
0.8.0 (schema 1.3) and 0.9.0 (schema 1.4) to this version.

A released scaffold, taken from this repository's history, generates a channel and a channel
with a trigger into a project whose migrations are applied, and a server of that release
delivers their events to clients that keep the ids they received; more events come while the
clients are away. Then the tool and the runtime are upgraded: `scaffold check` reports a
migration for each newer version of the runtime's schema (from 0.5: 1.1, then 1.2 and on; from
0.6: 1.2 and on; from 0.7: 1.3 and on; from 0.8: 1.4 and on; from 0.9: 1.5), `scaffold sync`
writes them, they are applied, and a server of this version resumes each client exactly, while a
role that only writes the application's table emits through the trigger the release created.
"""

import asyncio
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi_pg_sse.schema import SchemaVersion, shipped_versions
from fastapi_pg_sse.testing import Server, connected, migrated_database, payload_of, serve
from httpx_sse import ServerSentEvent

from scaffold.dependencies.needs import RUNTIME_RANGE
from tests.golden_cases import TRIGGERED
from tests.helpers import (
    DEMO_ONLY,
    channel_test_count,
    extract_release,
    run_generated_tests,
    run_released_scaffold,
    run_scaffold,
)
from tests.test_upgrade_from_0_4 import (
    LEVEL,
    LEVEL_STREAM,
    NEWEST,
    STOCK,
    STOCK_STREAM,
    Client,
    apply,
    new_migrations,
    schema_migration,
    schema_version,
    set_basket,
)


@dataclass(frozen=True)
class Release:
    """A release of scaffold and fastapi-pg-sse whose projects have the runtime's schema."""

    version: str
    commit: str
    """The last commit of the release."""
    schema: str
    """The version of the runtime's schema its projects create."""

    def __str__(self) -> str:
        return self.version


RELEASES = (
    Release("0.5", "7ecee43abac6e34b8eb1d9615099d96e841729d4", schema="1.0"),
    Release("0.6", "4ab3dcf7c10661f9d18edfc389445eb1a1803279", schema="1.1"),
    Release("0.7", "810fa60dcb73864d898adca3738c13fb60c5e805", schema="1.2"),
    Release("0.8", "3c2f53544c271315ca90099cde841438ca6bbb55", schema="1.3"),
    Release("0.9", "45dc7d04c19dde767bb66e6c2efad244c85bfcce", schema="1.4"),
)
FIRST_NEW_MIGRATION = 4
"""The number of the first migration sync writes: after the shop's table, the schema that the
release created, and the release's trigger."""


def schema_upgrades(release: Release) -> list[tuple[str, str]]:
    """Each version the runtime ships after `release`'s schema, oldest first, and the name of
    the migration to it that sync writes."""
    newer = [str(v) for v in shipped_versions() if v > SchemaVersion.parse(release.schema)]
    return [
        (version, f"{number:04d}_{schema_migration(version)}.sql")
        for number, version in enumerate(newer, start=FIRST_NEW_MIGRATION)
    ]


async def emit_stock(database_url: str, user_id: str, n: int) -> None:
    """A stock event, emitted in SQL as every release since 0.5 documents it."""
    async with connected(database_url) as connection:
        await connection.execute(
            "SELECT fastapi_pg_sse.emit('inventory_stock', $1, 'stock_updated', $2)",
            user_id,
            f'{{"n": {n}}}',
        )


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


@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_a_released_project_syncs_to_the_newest_schema_keeping_its_events_and_clients(
    release: Release, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, postgres_url: str
) -> None:
    extracted = extract_release(release.commit, tmp_path_factory.mktemp(f"release-{release}"))
    project = Path(
        shutil.copytree(
            extracted / "examples" / "shop",
            tmp_path / "shop",
            ignore=shutil.ignore_patterns("demo.py", *DEMO_ONLY),  # 0.5's demo had shop/demo.py
        )
    )
    run_released_scaffold(extracted, project, "create-sse-channel", *STOCK)
    run_released_scaffold(extracted, project, "create-sse-channel", *LEVEL, *TRIGGERED)
    upgrades = schema_upgrades(release)
    alice, carol = Client(STOCK_STREAM, "alice"), Client(LEVEL_STREAM, "carol")

    with migrated_database(postgres_url, project / "migrations") as database_url:
        runtime = {"PYTHONPATH": str(extracted / "fastapi-pg-sse" / "src")}
        with serve("shop.main:app", project, {"DATABASE_URL": database_url, **runtime}) as old:
            received = asyncio.run(before_the_upgrade(old, database_url, alice, carol))
        assert [(e.event, payload_of(e)) for e in received] == [
            ("stock_updated", {"n": 1}),
            ("stock_level_created", {"id": 1, "user_id": "carol", "stock": 1}),
        ]
        asyncio.run(emit_stock(database_url, "alice", 2))  # alice and carol are away
        asyncio.run(set_basket(database_url, "carol", 2))

        checked = run_scaffold("check", cwd=project)
        assert checked.exit_code == 1
        for version, name in upgrades:
            assert f"new schema  migrations/{name} (fastapi-pg-sse's schema {version})" in (
                checked.stdout
            )
        before = set((project / "migrations").iterdir())
        synced = run_scaffold("sync", cwd=project)
        assert synced.exit_code == 0, synced.stdout + synced.stderr
        written = new_migrations(project, "migrations", before)
        assert written == [name for _, name in upgrades]
        applied = ", ".join(f"migrations/{name}" for name in written)
        assert synced.stdout.endswith(f"\nApply {applied} to your database.\n")
        assert f'"fastapi-pg-sse{RUNTIME_RANGE}"' in (project / "pyproject.toml").read_text()
        assert run_scaffold("check", cwd=project).exit_code == 0
        asyncio.run(apply(database_url, [project / "migrations" / name for name in written]))
        assert asyncio.run(schema_version(database_url)) == NEWEST

        with serve("shop.main:app", project, {"DATABASE_URL": database_url}) as new:
            resumed = asyncio.run(after_the_upgrade(new, database_url, alice, carol))
    assert [(e.event, payload_of(e)) for e in resumed] == [
        ("stock_updated", {"n": 2}),
        ("stock_level_updated", {"id": 1, "user_id": "carol", "stock": 2}),
        ("stock_level_updated", {"id": 1, "user_id": "carol", "stock": 3}),
    ], "what each client missed before the upgrade, then an event of a role with no schema right"
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0


async def before_the_upgrade(
    server: Server, database_url: str, alice: Client, carol: Client
) -> list[ServerSentEvent]:
    """alice receives a stock event, carol one of the trigger: each keeps its id."""
    async with alice.streaming(server) as to_alice, carol.streaming(server) as to_carol:
        await emit_stock(database_url, "alice", 1)
        await set_basket(database_url, "carol", 1)
        return [await alice.receive(to_alice), await carol.receive(to_carol)]


async def after_the_upgrade(
    server: Server, database_url: str, alice: Client, carol: Client
) -> list[ServerSentEvent]:
    """What alice and carol missed, as they resume after their ids; then carol's event of an
    UPDATE by a role that may only write `baskets`, through the release's trigger."""
    async with alice.streaming(server) as to_alice, carol.streaming(server) as to_carol:
        missed = [await alice.receive(to_alice), await carol.receive(to_carol)]
        await as_a_writer(database_url, "UPDATE baskets SET stock = 3 WHERE user_id = 'carol'")
        return [*missed, await carol.receive(to_carol)]
