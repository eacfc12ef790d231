"""The database schema of the runtime the generated code runs on: its versions and their SQL.

fastapi-pg-sse ships its schema as SQL migrations, one file per version
(`fastapi_pg_sse/migrations/<major>.<minor>.sql`), which `python -m fastapi_pg_sse schema`
prints. scaffold writes them into a project's migrations from those same files, read as data,
never imported: from the fastapi-pg-sse installed beside scaffold, or from the copy in scaffold's
own wheel (the runtime released with it) when that one ships a newer schema of the same major
version (which the installed runtime works with too), or when no runtime is installed beside it.
The versions are parsed here again rather than imported from `fastapi_pg_sse.schema`: the
generator never imports the runtime.
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
    bundled = _bundled()
    source = bundled
    if (installed := _installed()) is not None:
        ours, theirs = _versions_in(bundled), _versions_in(installed)
        newer_of_the_same_major = (
            ours
            and theirs
            and _key(ours[-1])[0] == _key(theirs[-1])[0]
            and _key(ours[-1]) > _key(theirs[-1])
        )
        source = bundled if newer_of_the_same_major else installed
    versions = tuple(_versions_in(source))
    if not versions:
        raise RuntimeError(f"scaffold found no schema migration of fastapi-pg-sse in {source}")
    return source, versions


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
    """The runtime's migration to `version` from the version before, as `python -m
    fastapi_pg_sse schema --from <that version>` prints it."""
    return (_source()[0] / f"{version}.sql").read_text(encoding="utf-8")


def creation_sql(version: str) -> str:
    """The runtime's SQL that creates its schema at `version` in a database without it, as
    `python -m fastapi_pg_sse schema` prints it (the first version's is its migration)."""
    folder, shipped = _source()
    if version == shipped[0]:
        return migration_sql(version)
    return (folder / f"{version}.create.sql").read_text(encoding="utf-8")
