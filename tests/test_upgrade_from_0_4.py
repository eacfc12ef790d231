"""From scaffold and fastapi-pg-sse 0.4.0 to this version, on projects with events and clients.

scaffold 0.4.0, taken from this repository's history, generates a channel and a channel with a
trigger, whose events a 0.4.0 server delivers to clients that keep the ids they received. Then
the tool and the runtime are upgraded: `scaffold check` says to sync, `scaffold sync` writes the
migrations, they are applied, and a server of this version serves the same database. A client
resuming with an id from before the upgrade gets exactly what it missed, or a `reset`: never a
duplicate, a skipped event or another channel's event. The channels' own functions and lock
tables are gone; their events tables stay, the user's to drop (the runtime README says why).
"""

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from fastapi_pg_sse.schema import applied_version, newest_version
from fastapi_pg_sse.testing import (
    Server,
    alembic_migrated_database,
    alembic_upgrade,
    connected,
    migrated_database,
    next_event,
    open_stream,
    payload_of,
    serve,
    sign_token,
)
from httpx_sse import ServerSentEvent

from tests.golden_cases import TRIGGERED
from tests.helpers import (
    DEMO_ONLY,
    channel_test_count,
    extract_release,
    run_generated_tests,
    run_released_scaffold,
    run_scaffold,
)

RELEASE_0_4 = "966a29404d7bdb70295c653634b9f4a692e6e87d"
"""The last commit of scaffold and fastapi-pg-sse 0.4.0."""
STOCK = ("Stock", "in", "inventory")
LEVEL = ("StockLevel", "in", "warehouse-ops")
STOCK_STREAM = "/inventory/events/stock/stream"
LEVEL_STREAM = "/warehouse-ops/events/stock-level/stream"
LEGACY_FUNCTIONS = (
    "inventory_stock_emit",
    "inventory_stock_emit_many",
    "warehouse_ops_stock_level_emit",
    "warehouse_ops_stock_level_emit_many",
    "warehouse_ops_stock_level_on_change",
)
LEGACY_TABLES = ("inventory_stock_event_locks", "warehouse_ops_stock_level_event_locks")
KEPT_TABLES = ("inventory_stock_events", "warehouse_ops_stock_level_events")
ROW_FACTORY = "tests/realtime/baskets_rows.py"
NEWEST = str(newest_version())
"""The newest version of the runtime's schema, which sync creates in a project of 0.4."""


def schema_migration(version: str) -> str:
    """The name, without its number and suffix, of the migration to `version` of the runtime's
    schema that scaffold writes."""
    return f"fastapi_pg_sse_schema_{version.replace('.', '_')}"


@pytest.fixture(scope="module")
def release_0_4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as it was at 0.4.0: its scaffold, its runtime, and its example projects."""
    return extract_release(RELEASE_0_4, tmp_path_factory.mktemp("release-0.4"))


@dataclass
class Client:
    """A client of a stream, and the id it received last, as a browser keeps it."""

    stream: str
    user_id: str
    last_event_id: str | None = None

    @asynccontextmanager
    async def streaming(self, server: Server) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """The client's stream, resuming after its last id."""
        url, token = server.url + self.stream, sign_token(self.user_id)
        async with open_stream(url, token, last_event_id=self.last_event_id) as events:
            yield events

    async def receive(self, events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent:
        """The next event, whose id the client keeps."""
        event = await next_event(events)
        self.last_event_id = event.id
        return event


async def emit_stock(database_url: str, user_id: str, n: int, *, before_upgrade: bool) -> None:
    """A stock event, emitted in SQL as the channel's release documents it."""
    emit = (
        "inventory_stock_emit($1, 'stock_updated', $2)"
        if before_upgrade
        else "fastapi_pg_sse.emit('inventory_stock', $1, 'stock_updated', $2)"
    )
    async with connected(database_url) as connection:
        await connection.execute(f"SELECT {emit}", user_id, f'{{"n": {n}}}')


async def set_basket(database_url: str, user_id: str, stock: int) -> None:
    """Insert `user_id`'s basket or set its stock: an event of StockLevel, by its trigger."""
    async with connected(database_url) as connection:
        if (
            await connection.execute(
                "UPDATE baskets SET stock = $2 WHERE user_id = $1", user_id, stock
            )
            == "UPDATE 0"
        ):
            await connection.execute(
                "INSERT INTO baskets (user_id, stock) VALUES ($1, $2)", user_id, stock
            )


async def legacy_objects(database_url: str) -> dict[str, list[str]]:
    """Which of the 0.4 channels' functions and tables the database still has."""
    async with connected(database_url) as connection:
        functions = await connection.fetch(
            "SELECT proname FROM pg_proc WHERE proname = ANY ($1) ORDER BY 1", LEGACY_FUNCTIONS
        )
        tables = await connection.fetch(
            "SELECT relname FROM pg_class WHERE relname = ANY ($1) ORDER BY 1",
            [*LEGACY_TABLES, *KEPT_TABLES],
        )
    return {"functions": [row[0] for row in functions], "tables": [row[0] for row in tables]}


def new_migrations(project: Path, folder: str, before: set[Path]) -> list[str]:
    return sorted(path.name for path in (project / folder).iterdir() if path not in before)


def test_a_0_4_project_upgrades_with_sync_and_its_clients_resume_exactly(
    release_0_4: Path, tmp_path: Path, postgres_url: str
) -> None:
    project = Path(
        shutil.copytree(
            release_0_4 / "examples" / "shop",
            tmp_path / "shop",
            ignore=shutil.ignore_patterns(*DEMO_ONLY),
        )
    )
    run_released_scaffold(release_0_4, project, "create-sse-channel", *STOCK)
    run_released_scaffold(release_0_4, project, "create-sse-channel", *LEVEL, *TRIGGERED)
    assert (project / ROW_FACTORY).is_file()
    alice, bob = Client(STOCK_STREAM, "alice"), Client(STOCK_STREAM, "bob")
    carol = Client(LEVEL_STREAM, "carol")

    with migrated_database(postgres_url, project / "migrations") as database_url:
        runtime_0_4 = {"PYTHONPATH": str(release_0_4 / "fastapi-pg-sse" / "src")}
        with serve("shop.main:app", project, {"DATABASE_URL": database_url, **runtime_0_4}) as old:
            received = asyncio.run(before_the_upgrade(old, database_url, alice, bob, carol))
        assert [payload_of(event).get("n") for event in received] == [1, 2, 1, None]
        # The channels' own sequences gave out the same numbers: carol's StockLevel id is one
        # of alice's Stock ids.
        assert carol.last_event_id in {event.id for event in received[:2]}
        asyncio.run(emit_stock(database_url, "bob", 2, before_upgrade=True))  # bob misses it

        checked = run_scaffold("check", cwd=project)
        assert checked.exit_code == 1
        assert f"new schema  migrations/0004_{schema_migration(NEWEST)}.sql" in checked.stdout
        assert "upgrade  migrations/0005_upgrade_inventory_stock_sse_channel.sql" in checked.stdout
        assert checked.stdout.endswith("To fix: scaffold sync\n")
        before = set((project / "migrations").iterdir())
        synced = run_scaffold("sync", cwd=project)
        assert synced.exit_code == 0, synced.stdout + synced.stderr
        written = new_migrations(project, "migrations", before)
        assert written == [
            f"0004_{schema_migration(NEWEST)}.sql",
            "0005_upgrade_inventory_stock_sse_channel.sql",
            "0006_upgrade_warehouse_ops_stock_level_sse_channel.sql",
        ]
        applied = ", ".join(f"migrations/{name}" for name in written)
        assert f"Apply {applied} to your database." in synced.stdout
        assert not (project / ROW_FACTORY).exists(), "the unused, unedited row factory stayed"
        assert run_scaffold("check", cwd=project).exit_code == 0
        asyncio.run(apply(database_url, [project / "migrations" / name for name in written]))
        assert asyncio.run(schema_version(database_url)) == NEWEST
        left = asyncio.run(legacy_objects(database_url))
        assert left == {"functions": [], "tables": list(KEPT_TABLES)}

        with serve("shop.main:app", project, {"DATABASE_URL": database_url}) as new:
            missed, live, reset, after_reset = asyncio.run(
                after_the_upgrade(new, database_url, alice, bob, carol)
            )

    summary = [(event.event, payload_of(event)) for event in [*missed, *live]]
    assert summary == [
        ("stock_updated", {"n": 3}),
        ("stock_level_updated", {"id": 1, "user_id": "carol", "stock": 2}),
        ("stock_updated", {"n": 4}),
        ("stock_level_updated", {"id": 1, "user_id": "carol", "stock": 3}),
    ], "a client caught up before the upgrade gets exactly what it missed, of its channel only"
    assert int(missed[0].id) > max(int(event.id) for event in received)
    assert (reset.event, after_reset.event, payload_of(after_reset)) == (
        "reset",
        "stock_updated",
        {"n": 3},
    ), "a client that missed events of before the upgrade is told to reload its state"
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0


async def before_the_upgrade(
    server: Server, database_url: str, alice: Client, bob: Client, carol: Client
) -> list[ServerSentEvent]:
    """Each client receives events of 0.4.0; carol also gets a Stock event she does not read."""
    async with (
        alice.streaming(server) as to_alice,
        bob.streaming(server) as to_bob,
        carol.streaming(server) as to_carol,
    ):
        for n in (1, 2):
            await emit_stock(database_url, "alice", n, before_upgrade=True)
        await emit_stock(database_url, "bob", 1, before_upgrade=True)
        await set_basket(database_url, "carol", 1)
        await emit_stock(database_url, "carol", 1, before_upgrade=True)
        received = [await alice.receive(to_alice) for _ in range(2)]
        return [*received, await bob.receive(to_bob), await carol.receive(to_carol)]


async def after_the_upgrade(
    server: Server, database_url: str, alice: Client, bob: Client, carol: Client
) -> tuple[list[ServerSentEvent], list[ServerSentEvent], ServerSentEvent, ServerSentEvent]:
    """Events emitted while the clients are away, then their resumes: what alice and carol
    missed and then receive live; bob's first event, then his next."""
    await emit_stock(database_url, "alice", 3, before_upgrade=False)
    await emit_stock(database_url, "carol", 2, before_upgrade=False)
    await set_basket(database_url, "carol", 2)
    async with alice.streaming(server) as to_alice, carol.streaming(server) as to_carol:
        missed = [await alice.receive(to_alice), await carol.receive(to_carol)]
        await emit_stock(database_url, "alice", 4, before_upgrade=False)
        await set_basket(database_url, "carol", 3)
        live = [await alice.receive(to_alice), await carol.receive(to_carol)]
    async with bob.streaming(server) as to_bob:
        reset = await bob.receive(to_bob)
        await emit_stock(database_url, "bob", 3, before_upgrade=False)
        return missed, live, reset, await bob.receive(to_bob)


async def apply(database_url: str, migrations: list[Path]) -> None:
    async with connected(database_url) as connection:
        for migration in migrations:
            await connection.execute(migration.read_text())


async def schema_version(database_url: str) -> str:
    """The newest version of the runtime's schema the database records as applied."""
    async with connected(database_url) as connection:
        return str(await applied_version(connection))


def test_a_0_4_alembic_project_upgrades_with_sync_and_alembic(
    release_0_4: Path, tmp_path: Path, postgres_url: str
) -> None:
    project = Path(
        shutil.copytree(release_0_4 / "tests" / "corpus" / "alembic_shop", tmp_path / "shop")
    )
    for arguments in (("init",), ("create-sse-channel", *STOCK)):
        run_released_scaffold(release_0_4, project, *arguments)
    run_released_scaffold(release_0_4, project, "create-sse-channel", *LEVEL, *TRIGGERED)
    versions = project / "alembic" / "versions"
    with alembic_migrated_database(postgres_url, project / "alembic.ini") as database_url:
        asyncio.run(emit_stock(database_url, "alice", 1, before_upgrade=True))
        asyncio.run(set_basket(database_url, "carol", 1))

        before = set(versions.iterdir())
        synced = run_scaffold("sync", cwd=project)
        assert synced.exit_code == 0, synced.stdout + synced.stderr
        written = new_migrations(project, "alembic/versions", before)
        assert sorted(name.partition("_")[2] for name in written) == [
            f"{schema_migration(NEWEST)}.py",
            "upgrade_inventory_stock_sse_channel.py",
            "upgrade_warehouse_ops_stock_level_sse_channel.py",
        ]
        assert "Run `alembic upgrade head`" in synced.stdout
        alembic_upgrade(database_url, project / "alembic.ini")
        assert asyncio.run(schema_version(database_url)) == NEWEST
        left = asyncio.run(legacy_objects(database_url))
        assert left == {"functions": [], "tables": list(KEPT_TABLES)}
        asyncio.run(set_basket(database_url, "carol", 2))
        asyncio.run(emit_stock(database_url, "alice", 2, before_upgrade=False))
        asyncio.run(emit_to_audiences(database_url))
        assert asyncio.run(events_of_the_runtime(database_url)) == [
            ("warehouse_ops_stock_level", "carol", "", "stock_level_updated"),
            ("inventory_stock", "alice", "", "stock_updated"),
            ("inventory_stock", "", "store-1", "stock_updated"),
            ("inventory_stock", "", "", "stock_updated"),
        ], "the channels of 0.4 emit to users, to groups (schema 1.4) and to everyone"
    assert run_scaffold("check", cwd=project).exit_code == 0
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0


async def emit_to_audiences(database_url: str) -> None:
    """A stock event to a group of users, then to everyone, in SQL."""
    async with connected(database_url) as connection:
        await connection.execute(
            "SELECT fastapi_pg_sse.emit_to_group('inventory_stock', 'store-1', 'stock_updated',"
            " '{\"n\": 3}'); SELECT fastapi_pg_sse.broadcast('inventory_stock', 'stock_updated',"
            " '{\"n\": 4}')"
        )


async def events_of_the_runtime(database_url: str) -> list[tuple[str, str, str, str]]:
    """(channel, user, group, type) of each event of the runtime's table, in id order."""
    async with connected(database_url) as connection:
        rows = await connection.fetch(
            "SELECT channel, target_user_id, target_group, type FROM fastapi_pg_sse.events"
            " ORDER BY id"
        )
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def test_an_emitter_of_0_4_running_during_the_upgrade_loses_no_event(
    release_0_4: Path, tmp_path: Path, postgres_url: str
) -> None:
    """A rolling deploy: a process of the old version emits while the upgrade is applied. The
    upgrade waits for its transaction; from then on, the old table refuses new events."""
    project = Path(
        shutil.copytree(
            release_0_4 / "examples" / "shop",
            tmp_path / "shop",
            ignore=shutil.ignore_patterns(*DEMO_ONLY),
        )
    )
    run_released_scaffold(release_0_4, project, "create-sse-channel", *STOCK)
    with migrated_database(postgres_url, project / "migrations") as database_url:
        before = set((project / "migrations").iterdir())
        assert run_scaffold("sync", cwd=project).exit_code == 0
        upgrade = [
            project / "migrations" / n for n in new_migrations(project, "migrations", before)
        ]
        in_flight, horizon, next_id, refused = asyncio.run(
            upgrade_while_emitting(database_url, upgrade)
        )
    assert horizon == in_flight, "ann's clients resume after her event of the old table"
    assert next_id > in_flight
    assert refused == "CheckViolationError", "the old table took an event after the upgrade"


async def upgrade_while_emitting(
    database_url: str, upgrade: list[Path]
) -> tuple[int, int, int, str]:
    """Apply `upgrade` while an emit of 0.4 is in flight; return that event's id, how far ann's
    clients may resume from, the next id ann gets, and what an INSERT into the old table raises
    afterwards."""
    async with connected(database_url) as old, connected(database_url) as observer:
        emitting = old.transaction()
        await emitting.start()
        in_flight: int = await old.fetchval(
            "SELECT inventory_stock_emit('ann', 'stock_updated', '{}')"
        )
        applying = asyncio.create_task(apply(database_url, upgrade))
        async with asyncio.timeout(30):
            while not await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE cardinality(pg_blocking_pids(pid)) > 0 AND datname = current_database()"
            ):
                assert not applying.done(), "the upgrade did not wait for the emit in flight"
                await asyncio.sleep(0.02)
        await emitting.commit()
        await applying
        horizon: int = await observer.fetchval(
            "SELECT through_id FROM fastapi_pg_sse.pruned"
            " WHERE channel = 'inventory_stock' AND target_user_id = 'ann'"
        )
        await emit_stock(database_url, "ann", 2, before_upgrade=False)
        next_id: int = await observer.fetchval("SELECT max(id) FROM fastapi_pg_sse.events")
        try:
            await old.execute(
                "INSERT INTO inventory_stock_events (target_user_id, type, payload)"
                " VALUES ('ann', 'late', '{}')"
            )
        except asyncpg.PostgresError as error:
            return in_flight, horizon, next_id, type(error).__name__
    return in_flight, horizon, next_id, "nothing"
