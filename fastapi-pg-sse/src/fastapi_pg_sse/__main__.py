"""`python -m fastapi_pg_sse schema`: print, apply or check the runtime's database schema;
`python -m fastapi_pg_sse asyncapi`: write an app's AsyncAPI document.

    python -m fastapi_pg_sse schema                 # the SQL that creates it, to stdout
    python -m fastapi_pg_sse schema --from 1.0      # the SQL that upgrades it from 1.0
    python -m fastapi_pg_sse schema --apply         # apply what DATABASE_URL lacks
    python -m fastapi_pg_sse schema --check         # exit 1 unless this runtime works with it

The database is `REALTIME_DATABASE_URL`, else `DATABASE_URL`, as for the app, unless
`--database-url` names one. Exit status: 0 done or up to date, 1 behind (or ahead) with
`--check`, 2 bad arguments, an unreachable database, or SQL PostgreSQL refused (PostgreSQL 14
or later is needed).

    python -m fastapi_pg_sse asyncapi shop.main:app                # to stdout
    python -m fastapi_pg_sse asyncapi shop.main:create_app --output asyncapi.json

The app is imported from the current directory and `PYTHONPATH`; a factory (a function, sync or
async) is called, an ASGI middleware around the app (`CORSMiddleware(app)`) unwrapped, and what
the app prints as it is imported goes to stderr. Exit status: 0 written, 2 an app that cannot
be imported (or whose module exits) or documented, or a file that cannot be written (then
nothing is written).

    python -m fastapi_pg_sse tail inventory_stock               # its events as they commit
    python -m fastapi_pg_sse tail inventory_stock --user alice --after 41 --json
    python -m fastapi_pg_sse stats                              # channels, table size, streams

Exit status: 0 done (tail: stopped by Ctrl-C, SIGTERM, or after `--count` events; it connects
again when its connection is lost), 2 bad arguments, an unreachable database, or one without a
schema this runtime works with. See `fastapi_pg_sse.inspection`.
"""

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import sys
import tempfile
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from fastapi_pg_sse import inspection
from fastapi_pg_sse.channel import DATABASE_ERRORS, NAME
from fastapi_pg_sse.schema import (
    SchemaMismatch,
    SchemaVersion,
    apply_migrations,
    check_schema,
    newest_version,
    shipped_versions,
    upgrade_sql,
)

if TYPE_CHECKING:
    from fastapi import FastAPI


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
    asyncapi = commands.add_parser("asyncapi", help="write an app's AsyncAPI document")
    asyncapi.add_argument("app", help="the app, module:variable, or its factory, module:function")
    asyncapi.add_argument(
        "--output", type=Path, metavar="FILE", help="the file to write (default: stdout)"
    )
    _add_inspection_commands(commands)
    options = parser.parse_args(argv)
    if options.command == "asyncapi":
        return _asyncapi(options.app, options.output)
    if options.command in ("tail", "stats"):
        return _inspect(parser, options)
    if not (options.apply or options.check):
        sys.stdout.write(upgrade_sql(options.since))
        return 0
    if options.since is not None:
        parser.error("--from prints SQL: it goes with neither --apply nor --check")
    url = _database_url(parser, options.database_url)
    return _on_database(_apply(url) if options.apply else _check(url))


def _database_url(parser: argparse.ArgumentParser, given: str | None) -> str:
    """`--database-url`, else `REALTIME_DATABASE_URL`, else `DATABASE_URL`, as for the app."""
    url = given or os.environ.get("REALTIME_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        parser.error("set DATABASE_URL, or pass --database-url")
    return url


def _on_database(command: Coroutine[Any, Any, int]) -> int:
    """Run a command on the database; its exit status, or 2 with a message on stderr when the
    database cannot be reached or refuses it."""
    try:
        return asyncio.run(command)
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop, as it asks
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        return 0
    except asyncpg.PostgresError as error:
        print(f"error: PostgreSQL refused it: {error}", file=sys.stderr)
        return 2
    except DATABASE_ERRORS as error:
        print(f"error: cannot reach the database: {error}", file=sys.stderr)
        return 2
    except SchemaMismatch as mismatch:
        print(f"error: {mismatch}", file=sys.stderr)
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


def _asyncapi(reference: str, output: Path | None) -> int:
    """Write the AsyncAPI document of the app `reference` names to `output`, atomically, or to
    stdout: only the document, whatever the app prints as it is imported."""
    from fastapi_pg_sse.asyncapi import asyncapi_document

    try:
        with _stdout_kept_for_the_document():
            document = asyncapi_document(_app(reference))
    except _NoApp as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except Exception as error:
        print(
            f"error: cannot document {reference}: {type(error).__name__}: {error}", file=sys.stderr
        )
        return 2
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        _write_atomically(output, text)
    except OSError as error:
        print(f"error: cannot write {output}: {error.strerror}", file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def _stdout_kept_for_the_document() -> Iterator[None]:
    """While the block runs, what is written to standard output, by `print` or below Python (a
    C library, a child process), goes to standard error instead."""
    sys.stdout.flush()
    kept = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(kept, 1)
        os.close(kept)


class _NoApp(Exception):
    """The reference names no app that can be documented."""


def _app(reference: str) -> "FastAPI":
    """The app `module:name` names: the FastAPI application, the one its factory returns, or the
    one a middleware wraps; an error saying why if there is none, or if its module exits."""
    module_name, _, name = reference.partition(":")
    if not (module_name and name.isidentifier()):
        raise _NoApp(f"{reference!r} is not module:name, such as shop.main:app")
    try:
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise _NoApp(f"{module_name} has no {name}")
        return _fastapi_app(reference, getattr(module, name))
    except _NoApp:
        raise
    except SystemExit as exited:
        raise _NoApp(
            f"cannot load the app {reference}: it exited (SystemExit: {exited.code}) as it was"
            " imported or built: is something it needs (a setting, a file) missing?"
        ) from exited
    except Exception as error:
        raise _NoApp(
            f"cannot load the app {reference}: {type(error).__name__}: {error} (modules are"
            " imported from the current directory and PYTHONPATH)"
        ) from error


def _fastapi_app(reference: str, target: object) -> "FastAPI":
    """The FastAPI app `target` is, or its factory (a function, sync or async) returns; or the
    one it wraps, if it is an ASGI middleware (such as `CORSMiddleware(app)`): the app of its
    `app` attribute, as far down as they go."""
    from fastapi import FastAPI

    built = target() if inspect.isfunction(target) else target
    if inspect.iscoroutine(built):
        built = asyncio.run(built)
    app, unwrapped = built, set()
    while not isinstance(app, FastAPI) and hasattr(app, "app") and id(app) not in unwrapped:
        unwrapped.add(id(app))
        app = app.app
    if isinstance(app, FastAPI):
        return app
    is_or_returns = "returns" if inspect.isfunction(target) else "is"
    if callable(built):
        raise _NoApp(
            f"{reference} {is_or_returns} an ASGI app ({type(built).__name__}) that neither is a"
            " FastAPI app nor wraps one (as its `app` attribute, or that of the app it wraps):"
            " name the FastAPI app, or a function that returns it"
        )
    raise _NoApp(f"{reference} is neither a FastAPI app nor a function that returns one")


def _write_atomically(output: Path, text: str) -> None:
    """Write `text` as it is (`\\n` line endings, on every platform) to `output`, through a
    temporary file beside it and a rename, keeping the mode of the file it replaces."""
    mode = output.stat().st_mode & 0o777 if output.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _add_inspection_commands(commands: "argparse._SubParsersAction[Any]") -> None:
    """`tail` and `stats` (see `fastapi_pg_sse.inspection`)."""
    database_url = {
        "help": "the database (default: REALTIME_DATABASE_URL, else DATABASE_URL)",
    }
    tail = commands.add_parser("tail", help="print a channel's events as they commit")
    tail.add_argument("channel", type=_channel_name, help="the channel, such as inventory_stock")
    tail.add_argument("--user", help="only the events of this target user id")
    tail.add_argument(
        "--after",
        type=_event_id,
        metavar="ID",
        help="print the events after this id (default: those committed from now on)",
    )
    tail.add_argument(
        "--count", type=_positive, metavar="N", help="exit once N events were printed"
    )
    tail.add_argument("--json", action="store_true", help="one JSON object a line")
    tail.add_argument("--database-url", **database_url)
    stats = commands.add_parser(
        "stats", help="each channel's events, the events table's size, each process's streams"
    )
    stats.add_argument("--json", action="store_true", help="one JSON document")
    stats.add_argument("--database-url", **database_url)


def _inspect(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    url = _database_url(parser, options.database_url)
    if options.command == "stats":
        return _on_database(inspection.stats(url, as_json=options.json, out=sys.stdout))
    return _on_database(
        inspection.tail(
            url,
            options.channel,
            user=options.user,
            after=options.after,
            count=options.count,
            as_json=options.json,
            out=sys.stdout,
            err=sys.stderr,
        )
    )


def _channel_name(text: str) -> str:
    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a channel name: a lowercase SQL identifier of at most 53"
            " characters, such as inventory_stock"
        )
    return text


def _event_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) < 2**63):
        raise argparse.ArgumentTypeError(f"{text!r} is not an event id, such as 41 (0: all)")
    return int(text)


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
