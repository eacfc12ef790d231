"""The database schema of the runtime the generated code runs on: its versions and their SQL.

fastapi-pg-sse ships its schema as SQL migrations, one file per version
(`fastapi_pg_sse/migrations/<major>.<minor>.sql`), which `python -m fastapi_pg_sse schema`
prints. scaffold writes them into a project's migrations from those same files, read as data,
never imported: from the fastapi-pg-sse installed beside scaffold, or from the copy in scaffold's
own wheel (the runtime released with it), whichever ships the newer schema.
"""

import importlib.util
import re
from functools import cache
from pathlib import Path

_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
RUNTIME_PACKAGE = "fastapi_pg_sse"


def _bundled() -> Path:
    """The runtime's migrations in scaffold's wheel, or in this repository's checkout."""
    packaged = Path(__file__).resolve().parent / "runtime_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "fastapi-pg-sse/src/fastapi_pg_sse/migrations"


def _installed() -> Path | None:
    """The migrations of the fastapi-pg-sse installed beside scaffold, found without importing
    it; None when it is not installed."""
    spec = importlib.util.find_spec(RUNTIME_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    return folder if folder.is_dir() else None


def _key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def _versions_in(folder: Path) -> list[str]:
    names = (path.name.removesuffix(".sql") for path in folder.glob("*.sql"))
    return sorted((name for name in names if _VERSION.fullmatch(name)), key=_key)


@cache
def _source() -> tuple[Path, tuple[str, ...]]:
    """The folder of migrations scaffold writes from, and its versions, oldest first."""
    folders = [folder for folder in (_installed(), _bundled()) if folder is not None]
    found = [(folder, tuple(_versions_in(folder))) for folder in folders]
    found = [(folder, versions) for folder, versions in found if versions]
    if not found:
        raise RuntimeError("scaffold found no schema migration of fastapi-pg-sse to write")
    return max(found, key=lambda item: _key(item[1][-1]))


def versions() -> tuple[str, ...]:
    """Every version of the runtime's schema, oldest first, such as `("1.0",)`."""
    return _source()[1]


def versions_after(version: str | None) -> list[str]:
    """The versions a project whose migrations reach `version` (None: none) lacks."""
    return [v for v in versions() if version is None or _key(v) > _key(version)]


def newest(recorded: list[str]) -> str | None:
    """The newest of `recorded` versions; None if there are none."""
    return max(recorded, key=_key, default=None)


def migration_sql(version: str) -> str:
    """The runtime's migration to `version`, as `python -m fastapi_pg_sse schema` prints it."""
    return (_source()[0] / f"{version}.sql").read_text(encoding="utf-8")
