"""`python -m fastapi_pg_sse._alembic_upgrade CONFIG DATABASE_URL`: `alembic -c CONFIG upgrade
head`, on the database at DATABASE_URL. `fastapi_pg_sse.testing.alembic_upgrade` runs it."""

import inspect
import sys
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config

READS_PYPROJECT = "toml_file" in inspect.signature(Config).parameters
"""Whether this Alembic reads `[tool.alembic]` in pyproject.toml (1.16 and later)."""
DEFAULT_DRIVER = "postgresql+asyncpg"
"""The SQLAlchemy driver of a project whose configuration names none: the runtime's own."""


def upgrade(config_file: str, database_url: str) -> None:
    config = _config(config_file)
    url = _with_driver(database_url, config.get_main_option("sqlalchemy.url"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


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
    upgrade(*sys.argv[1:])
