"""`python -m fastapi_pg_sse schema`: print, apply or check the runtime's database schema.

    python -m fastapi_pg_sse schema                 # the SQL that creates it, to stdout
    python -m fastapi_pg_sse schema --from 1.0      # the SQL that upgrades it from 1.0
    python -m fastapi_pg_sse schema --apply         # apply what DATABASE_URL lacks
    python -m fastapi_pg_sse schema --check         # exit 1 unless this runtime works with it

The database is `REALTIME_DATABASE_URL`, else `DATABASE_URL`, as for the app, unless
`--database-url` names one. Exit status: 0 done or up to date, 1 behind (or ahead) with
`--check`, 2 bad arguments, an unreachable database, or SQL PostgreSQL refused (PostgreSQL 14
or later is needed).
"""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import asyncpg

from fastapi_pg_sse.channel import DATABASE_ERRORS
from fastapi_pg_sse.schema import (
    SchemaMismatch,
    SchemaVersion,
    apply_migrations,
    check_schema,
    newest_version,
    shipped_versions,
    upgrade_sql,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastapi_pg_sse")
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser(
        "schema", help="print, apply or check the database schema of the runtime"
    )
    schema.add_argument(
        "--from",
        dest="since",
        type=_shipped_version,
        metavar="VERSION",
        help="print only what upgrades a schema at VERSION",
    )
    action = schema.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="apply what the database lacks")
    action.add_argument(
        "--check", action="store_true", help="exit 1 unless the database is up to date"
    )
    schema.add_argument(
        "--database-url", help="the database (default: REALTIME_DATABASE_URL, else DATABASE_URL)"
    )
    options = parser.parse_args(argv)
    if not (options.apply or options.check):
        sys.stdout.write(upgrade_sql(options.since))
        return 0
    if options.since is not None:
        parser.error("--from prints SQL: it goes with neither --apply nor --check")
    url = (
        options.database_url
        or os.environ.get("REALTIME_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        parser.error("set DATABASE_URL, or pass --database-url")
    try:
        return asyncio.run(_apply(url) if options.apply else _check(url))
    except asyncpg.PostgresError as error:
        print(f"error: PostgreSQL refused it: {error}", file=sys.stderr)
        return 2
    except DATABASE_ERRORS as error:
        print(f"error: cannot reach the database: {error}", file=sys.stderr)
        return 2


async def _apply(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        applied = await apply_migrations(connection)
    finally:
        await connection.close()
    if applied:
        print(f"Applied fastapi-pg-sse schema {', '.join(map(str, applied))}.")
    else:
        print(f"The fastapi-pg-sse schema is up to date ({newest_version()} or newer).")
    return 0


async def _check(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        version = await check_schema(connection)
    except SchemaMismatch as mismatch:
        print(f"error: {mismatch}", file=sys.stderr)
        return 1
    finally:
        await connection.close()
    if version < newest_version():
        print(
            f"The fastapi-pg-sse schema is {version}: this runtime works with it;"
            f" --apply upgrades it to {newest_version()}."
        )
    else:
        print(f"The fastapi-pg-sse schema is {version}: up to date.")
    return 0


def _shipped_version(text: str) -> SchemaVersion:
    """A version given on the command line, if this runtime shipped it."""
    try:
        version = SchemaVersion.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if version not in shipped_versions():
        shipped = ", ".join(map(str, shipped_versions()))
        raise argparse.ArgumentTypeError(f"no schema {version} was shipped (versions: {shipped})")
    return version


if __name__ == "__main__":
    sys.exit(main())
