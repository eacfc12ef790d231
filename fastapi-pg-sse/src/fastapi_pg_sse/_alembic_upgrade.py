"""`python -m fastapi_pg_sse._alembic_upgrade CONFIG DATABASE_URL`: `alembic -c CONFIG upgrade
head`, on the database at DATABASE_URL. `fastapi_pg_sse.testing.alembic_upgrade` runs it.

A connection that env.py opens to another database (one its own settings name, say) is refused
before it opens: the process exits with OTHER_DATABASE and prints that database's name, having
run nothing there.
"""

import inspect
import sys
from typing import Any
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine

READS_PYPROJECT = "toml_file" in inspect.signature(Config).parameters
"""Whether this Alembic reads `[tool.alembic]` in pyproject.toml (1.16 and later)."""
DEFAULT_DRIVER = "postgresql+asyncpg"
"""The SQLAlchemy driver of a project whose configuration names none: the runtime's own."""
OTHER_DATABASE = 3
"""The exit status when env.py connected to another database than the one given."""


class OtherDatabase(Exception):
    """env.py opened a connection to another database than the one it was given."""

    def __init__(self, database: str) -> None:
        super().__init__(database)
        self.database = database


def upgrade(config_file: str, database_url: str) -> None:
    _refuse_other_databases(urlsplit(database_url).path.removeprefix("/"))
    config = _config(config_file)
    url = _with_driver(database_url, config.get_main_option("sqlalchemy.url"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def _refuse_other_databases(database: str) -> None:
    """Make every SQLAlchemy connection to a database not named `database` fail before it opens.

    The test databases' names are new and random: another database of that name is none a
    developer keeps, and a connection that names none (its driver then picks one, such as the
    user's name) is not to the test database either. An engine made with a `creator` function
    of its own connects without SQLAlchemy knowing where: the caller sees what the upgrade
    left."""

    @event.listens_for(Engine, "do_connect")
    def refuse(_dialect: Any, _record: Any, _args: Any, parameters: dict[str, Any]) -> None:
        named = parameters.get("database", parameters.get("dbname"))
        if named != database:
            raise OtherDatabase(str(named or ""))


def _config(name: str) -> Config:
    """The configuration `alembic -c name` reads: an ini file and `pyproject.toml` (or
    `pyproject.toml` and `alembic.ini`), each if it exists."""
    if name == "pyproject.toml":
        return Config("alembic.ini", toml_file=name)
    return Config(name, toml_file="pyproject.toml") if READS_PYPROJECT else Config(name)


def _with_driver(database_url: str, configured: str | None) -> str:
    """`database_url` with the scheme of the configured URL if that is a PostgreSQL one, such
    as `postgresql+asyncpg` or `postgresql+psycopg`."""
    scheme = urlsplit(configured or "").scheme
    if not scheme.startswith("postgresql"):
        scheme = DEFAULT_DRIVER
    return urlsplit(database_url)._replace(scheme=scheme).geturl()


if __name__ == "__main__":
    try:
        upgrade(*sys.argv[1:])
    except OtherDatabase as refused:
        print(refused.database, file=sys.stderr)
        sys.exit(OTHER_DATABASE)
