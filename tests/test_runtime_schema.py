"""The runtime's schema migration in a project: written once, or found where the project wrote
it itself, and never one scaffold cannot write."""

from pathlib import Path

from fastapi_pg_sse.schema import SchemaVersion, migration_sql, upgrade_sql

from tests.helpers import run_scaffold, snapshot

STOCK = ("Stock", "in", "inventory")


def test_a_schema_migration_the_project_wrote_itself_is_recorded_not_written_again(
    shop: Path,
) -> None:
    """A project of channels written by hand keeps the printed schema among its migrations."""
    (shop / "migrations" / "0002_realtime.sql").write_text(upgrade_sql())
    created = run_scaffold("create-sse-channel", *STOCK, cwd=shop)
    assert created.exit_code == 0, created.stderr
    assert sorted(path.name for path in (shop / "migrations").iterdir()) == [
        "0001_create_baskets.sql",
        "0002_realtime.sql",
    ]
    assert "Apply" not in created.stdout, "no migration to apply: the project's own applies it"
    pyproject = (shop / "pyproject.toml").read_text()
    assert '[[tool.scaffold.schema]]\nversion = "1.5"\nmigration = "0002_realtime.sql"\n' in (
        pyproject
    )
    assert run_scaffold("check", cwd=shop).exit_code == 0


def test_a_project_whose_own_migration_applies_an_older_schema_gets_the_upgrade(
    shop: Path,
) -> None:
    """The schema 1.0 an earlier runtime printed, kept among the project's migrations: recorded,
    and followed by the migrations to each later version rather than a second creation."""
    (shop / "migrations" / "0002_realtime.sql").write_text(migration_sql(SchemaVersion(1, 0)))
    created = run_scaffold("create-sse-channel", *STOCK, cwd=shop)
    assert created.exit_code == 0, created.stderr
    for number, minor in ((3, 1), (4, 2), (5, 3), (6, 4), (7, 5)):
        upgrade = shop / "migrations" / f"000{number}_fastapi_pg_sse_schema_1_{minor}.sql"
        assert upgrade.read_text().endswith(migration_sql(SchemaVersion(1, minor)))
    pyproject = (shop / "pyproject.toml").read_text()
    assert (
        '[[tool.scaffold.schema]]\nversion = "1.0"\nmigration = "0002_realtime.sql"\n\n'
        '[[tool.scaffold.schema]]\nversion = "1.1"\n'
        'migration = "0003_fastapi_pg_sse_schema_1_1.sql"\n\n'
        '[[tool.scaffold.schema]]\nversion = "1.2"\n'
        'migration = "0004_fastapi_pg_sse_schema_1_2.sql"\n\n'
        '[[tool.scaffold.schema]]\nversion = "1.3"\n'
        'migration = "0005_fastapi_pg_sse_schema_1_3.sql"\n\n'
        '[[tool.scaffold.schema]]\nversion = "1.4"\n'
        'migration = "0006_fastapi_pg_sse_schema_1_4.sql"\n\n'
        '[[tool.scaffold.schema]]\nversion = "1.5"\n'
        'migration = "0007_fastapi_pg_sse_schema_1_5.sql"\n'
    ) in pyproject
    assert run_scaffold("check", cwd=shop).exit_code == 0


def test_a_recorded_schema_version_this_scaffold_does_not_know_is_refused(shop: Path) -> None:
    """A teammate synced with a newer scaffold: this one cannot write that schema's migration."""
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[[tool.scaffold.channels]]",
            '[[tool.scaffold.schema]]\nversion = "1.9"\nmigration = "0003_next.sql"\n\n'
            "[[tool.scaffold.channels]]",
        )
    )
    before = snapshot(shop)
    for command in ("check", "sync"):
        refused = run_scaffold(command, cwd=shop)
        assert refused.exit_code == 2, refused.stdout + refused.stderr
        assert (
            "records migrations to fastapi-pg-sse's schema 1.9, which this scaffold does not"
            " know (it knows 1.0, 1.1, 1.2, 1.3, 1.4, 1.5): upgrade scaffold and fastapi-pg-sse"
        ) in refused.stderr
        assert "Traceback" not in refused.stderr
    assert snapshot(shop) == before
