"""The runtime's database schema, `fastapi_pg_sse`: its versioned migrations, applied and checked.

Everything the runtime keeps in PostgreSQL lives in that schema, upgraded by the SQL migrations
shipped beside this module (`migrations/<major>.<minor>.sql`, each from the version before), and
created in a database without it at the newest version in one step
(`migrations/<major>.<minor>.create.sql`: what the migrations up to that version make), as
Procrastinate ships its `schema.sql` beside its migrations. Each records its version in
`fastapi_pg_sse.migrations`, however it is applied: `python -m fastapi_pg_sse schema --apply`,
`apply_migrations`, `alembic_create` and `alembic_upgrade` in Alembic revisions, or a project's
own SQL migrations (scaffold writes them from these files).

A runtime creates and upgrades to the newest version it ships, and works with any version of the
same major version from `required_version()` on: a minor version only adds to the schema. Applied
migrations are history and never change.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi_pg_sse.channel import Connection

SCHEMA = "fastapi_pg_sse"
MIGRATIONS = Path(__file__).with_name("migrations")
"""One `<major>.<minor>.sql` file per version, its `<major>.<minor>.downgrade.sql`, and for a
version after the first its `<major>.<minor>.create.sql`."""
FIX = (
    "apply the migrations `scaffold sync` writes (`alembic upgrade head` in an Alembic project,"
    " else your SQL migrations), or, in a project that keeps no migrations, run"
    " `python -m fastapi_pg_sse schema --apply`"
)
"""What brings a database up to date, as the start-up error says it: the project's own tool
first, since a migration fails on a database that `--apply` gave its version already."""

_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_APPLY_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fastapi_pg_sse.migrations'))"
"""Taken by `apply_migrations`, so that processes applying the migrations at once take turns."""


@dataclass(frozen=True, order=True)
class SchemaVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> "SchemaVersion":
        """`1.0` as a version; `ValueError` for anything else."""
        match = _VERSION.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a schema version such as 1.0")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


class SchemaMismatch(RuntimeError):
    """The database's schema is not one this runtime works with; the message says how to fix it."""


@cache
def shipped_versions() -> tuple[SchemaVersion, ...]:
    """Every version this runtime ships a migration for, oldest first."""
    versions = sorted(
        SchemaVersion.parse(path.name.removesuffix(".sql"))
        for path in MIGRATIONS.glob("*.sql")
        if _VERSION.fullmatch(path.name.removesuffix(".sql"))
    )
    return tuple(versions)


def newest_version() -> SchemaVersion:
    """The newest version this runtime ships: what it creates, and upgrades to."""
    return shipped_versions()[-1]


def required_version() -> SchemaVersion:
    """The oldest version this runtime works with: the schema its Python code relies on. A newer
    minor version adds what SQL of a project's own may call (1.2: `create_trigger` through a
    foreign key), and a database keeps working at the version it has until it is upgraded.

    1.3: the listener reads each event's traceparent and the revocations, and a traced emit
    stores its traceparent: a database at 1.2 would fail each of them. 1.4: every stream reads
    its user's groups and the channel's broadcasts (the events' `target_group`). 1.5: every
    listener numbers the events of poll-delivery sessions (`fastapi_pg_sse.sequence_queued`)."""
    return SchemaVersion(1, 5)


def migration_sql(version: SchemaVersion) -> str:
    """The SQL that upgrades the schema from the version before `version` to it."""
    return _read(f"{version}.sql")


def creation_sql(version: SchemaVersion) -> str:
    """The SQL that creates the schema at `version` in a database without it."""
    if version == shipped_versions()[0]:
        return migration_sql(version)
    return _read(f"{version}.create.sql")


def downgrade_sql(version: SchemaVersion) -> str:
    """The SQL that undoes `migration_sql(version)`."""
    return _read(f"{version}.downgrade.sql")


def upgrade_sql(since: SchemaVersion | None = None) -> str:
    """The SQL that brings a schema at `since` to `newest_version()`, each newer version's
    migration, oldest first; or that creates it, when `since` is None. As `python -m
    fastapi_pg_sse schema` prints it."""
    if since is None:
        return creation_sql(newest_version())
    return "\n".join(migration_sql(v) for v in shipped_versions() if v > since)


def statements(sql: str) -> list[str]:
    """The statements of one of the shipped migrations, each for a call of its own (an Alembic
    `op.execute`; a prepared statement holds only one).

    A statement ends with a line ending in `;` outside a `$$` body, as the migrations write them.
    """
    found: list[str] = []
    lines: list[str] = []
    in_body = False
    for line in sql.splitlines():
        lines.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if line.endswith(";") and not in_body:
            found.append("\n".join(lines).strip())
            lines = []
    if "\n".join(lines).strip():
        raise ValueError(f"a statement does not end with ';': {lines[0]!r}")
    return found


def _read(name: str) -> str:
    path = MIGRATIONS / name
    if not path.is_file():
        raise LookupError(f"fastapi-pg-sse ships no schema migration {name}")
    return path.read_text(encoding="utf-8")


async def applied_version(
    connection: Connection, *, timeout: float | None = None
) -> SchemaVersion | None:
    """The newest version applied to the database; None when it has no schema of the runtime."""
    exists: bool = await connection.fetchval(
        "SELECT to_regclass('fastapi_pg_sse.migrations') IS NOT NULL", timeout=timeout
    )
    if not exists:
        return None
    applied: list[str] = await connection.fetchval(
        "SELECT coalesce(array_agg(version), '{}') FROM fastapi_pg_sse.migrations", timeout=timeout
    )
    return max(map(SchemaVersion.parse, applied), default=None)


def require(applied: SchemaVersion | None) -> None:
    """Raise `SchemaMismatch`, with one line saying what to do, unless this runtime works with a
    database whose schema is at `applied`."""
    needed = required_version()
    if applied is not None and applied.major == needed.major and applied >= needed:
        return
    if applied is None:
        problem, fix = "the database has no fastapi-pg-sse schema", FIX
    elif applied > needed:
        problem = f"the database's fastapi-pg-sse schema is {applied}, newer than {needed.major}.x"
        fix = "upgrade fastapi-pg-sse to a version that supports it"
    else:
        problem, fix = f"the database's fastapi-pg-sse schema is {applied}, not {needed}", FIX
    raise SchemaMismatch(f"{problem}: {fix}")


async def check_schema(connection: Connection, *, timeout: float | None = None) -> SchemaVersion:
    """The database's schema version, if this runtime works with it; else `SchemaMismatch`."""
    applied = await applied_version(connection, timeout=timeout)
    require(applied)
    assert applied is not None, "require() refuses a database without the schema"
    return applied


async def apply_migrations(connection: Connection) -> list[SchemaVersion]:
    """Bring the database's schema to `newest_version()` in one transaction: create it, or
    apply the migrations it lacks. Return the versions it reached (the one created, or each
    one applied)."""
    async with connection.transaction():
        await connection.execute(_APPLY_LOCK)
        applied = await applied_version(connection)
        if applied is None:
            await connection.execute(creation_sql(newest_version()))
            return [newest_version()]
        pending = [v for v in shipped_versions() if v > applied]
        for version in pending:
            await connection.execute(migration_sql(version))
    return pending


def alembic_create(version: str) -> None:
    """Create the schema at `version` from the `upgrade()` of an Alembic revision:
    `alembic_create("1.1")`. The revision stays as it is when the runtime is upgraded; a newer
    schema comes in a revision of its own, which calls `alembic_upgrade`."""
    _alembic_execute(creation_sql(SchemaVersion.parse(version)))


def alembic_drop() -> None:
    """Drop the schema, and every event, from the `downgrade()` of the revision that created it."""
    _alembic_execute(downgrade_sql(shipped_versions()[0]))


def alembic_upgrade(version: str) -> None:
    """Upgrade the schema to `version` from the version before it, from the `upgrade()` of an
    Alembic revision: `alembic_upgrade("1.1")`."""
    _alembic_execute(migration_sql(SchemaVersion.parse(version)))


def alembic_downgrade(version: str) -> None:
    """Undo schema `version` from the `downgrade()` of the revision that applied it."""
    _alembic_execute(downgrade_sql(SchemaVersion.parse(version)))


def _alembic_execute(sql: str) -> None:
    from alembic import op

    for statement in statements(sql):
        op.execute(statement)
