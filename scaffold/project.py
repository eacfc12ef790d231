"""The target project as `scaffold` sees it: its `[tool.scaffold]` table and recorded channels."""

import json
import keyword
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffold.errors import BadInput
from scaffold.names import ChannelNames, channel_names, payload_columns, sql_identifier

SETTINGS_HELP = {
    "package": "the Python package that holds the application",
    "app": "the FastAPI application or its factory, as module:name",
    "migrations": "folder of plain SQL migrations, applied in file-name order",
    "alembic": "Alembic's configuration: migrations are revisions in its script_location",
    "tests": "folder of the project's tests",
}


def scaffold_table(settings: Mapping[str, str]) -> str:
    """A `[tool.scaffold]` table of `settings`, each with a comment saying what it is."""
    lines = {key: f"{key} = {json.dumps(value)}" for key, value in settings.items()}
    width = max(len(line) for line in lines.values())
    commented = [f"{line:<{width}} # {SETTINGS_HELP[key]}" for key, line in lines.items()]
    return "\n".join(["[tool.scaffold]", *commented])


CONFIG_EXAMPLE = scaffold_table(
    {"package": "shop", "app": "shop.main:app", "migrations": "migrations", "tests": "tests"}
)


@dataclass(frozen=True)
class Trigger:
    """Emit from a trigger on a user table, to the user in `user_column`."""

    table: str
    user_column: str
    columns: tuple[str, ...] | None = None
    """The columns each event carries (`--columns`); None: every column of the row."""

    @property
    def target(self) -> str:
        """`table.user_column`: where the trigger finds each event's user."""
        return f"{self.table}.{self.user_column}"

    @property
    def payload(self) -> str:
        """What each event carries, in words: `every column of baskets` or `id, stock`."""
        if self.columns is None:
            return f"every column of {self.table}"
        return ", ".join(self.columns)

    def as_json(self) -> dict[str, object]:
        return {
            "table": self.table,
            "user_column": self.user_column,
            "columns": None if self.columns is None else list(self.columns),
            "payload": self.payload,
        }


@dataclass(frozen=True)
class ChannelRecord:
    """One `[[tool.scaffold.channels]]` entry: what the user asked for, and its migration."""

    name: str
    module: str
    migration: str
    trigger: Trigger | None = None
    down_revision: str | None = None
    """For an Alembic revision: the revision it follows, None for the first one."""

    @property
    def names(self) -> ChannelNames:
        return channel_names(self.name, self.module, with_trigger=self.trigger is not None)

    def as_toml(self) -> dict[str, str | list[str]]:
        table: dict[str, str | list[str]] = {
            "name": self.name,
            "module": self.module,
            "migration": self.migration,
        }
        if self.down_revision is not None:
            table["down_revision"] = self.down_revision
        if self.trigger is not None:
            table |= {"table": self.trigger.table, "user_column": self.trigger.user_column}
            if self.trigger.columns is not None:
                table["columns"] = list(self.trigger.columns)
        return table


@dataclass(frozen=True)
class Project:
    root: Path
    package: str
    app_module: str
    app_variable: str
    migrations: str
    tests: str
    channels: tuple[ChannelRecord, ...]
    auth: tuple[str, str] | None = None
    """The project's own auth dependency, (module, name), used instead of the generated one."""
    alembic: str | None = None
    """Alembic's configuration file (what `alembic -c` takes), relative to the root, when the
    migrations are Alembic revisions; None for plain SQL files."""
    typescript: str | None = None
    """The folder, relative to the root, of the generated TypeScript client; None: no client."""

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"


def find_pyproject(start: Path) -> Path:
    """The nearest `pyproject.toml` at or above `start`."""
    start = start.resolve()
    if not start.exists():
        raise BadInput(f"project path {start} does not exist")
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    raise BadInput(
        f"no pyproject.toml at or above {start}; run scaffold inside your FastAPI project"
        " or pass --project PATH"
    )


def load_project(start: Path) -> Project:
    """Read and validate the project's `[tool.scaffold]` table; raise `BadInput` if unusable."""
    pyproject = find_pyproject(start)
    table = read_pyproject(pyproject).get("tool", {}).get("scaffold")
    if not isinstance(table, dict):
        raise BadInput(
            f"{pyproject} has no [tool.scaffold] table; add one such as:\n\n{CONFIG_EXAMPLE}"
        )
    settings = {key: _setting(table, key, pyproject) for key in ("package", "app", "tests")}
    migrations, alembic = _migrations(table, pyproject)
    app = _reference(settings["app"])
    if app is None:
        raise BadInput(f"[tool.scaffold] app in {pyproject} must look like 'shop.main:app'")
    auth = table.get("auth")
    if auth is not None and (not isinstance(auth, str) or _reference(auth) is None):
        raise BadInput(
            f"[tool.scaffold] auth in {pyproject} must name a FastAPI dependency that returns"
            " the user id, like 'shop.auth:current_user_id'"
        )
    if not _is_dotted_name(settings["package"]):
        raise BadInput(f"[tool.scaffold] package in {pyproject} must be a package name like 'shop'")
    channels = tuple(
        _channel(entry, pyproject, alembic=alembic is not None)
        for entry in table.get("channels", [])
    )
    check_distinct(channels)
    typescript = table.get("typescript")
    if typescript is not None and (
        not isinstance(typescript, str) or not typescript.strip() or not _inside(typescript)
    ):
        raise BadInput(
            f"[tool.scaffold] typescript in {pyproject} must be a folder inside the project,"
            ' where scaffold writes the TypeScript client, like "web/realtime"'
        )
    return Project(
        root=pyproject.parent,
        package=settings["package"],
        app_module=app[0],
        app_variable=app[1],
        migrations=migrations,
        tests=settings["tests"],
        channels=channels,
        auth=_reference(auth) if auth else None,
        alembic=alembic,
        typescript=typescript,
    )


def read_pyproject(pyproject: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{pyproject} is not valid TOML: {error}") from error


def check_distinct(channels: tuple[ChannelRecord, ...]) -> None:
    """Refuse two channels that would share a Python module or a PostgreSQL name."""
    seen: dict[str, ChannelRecord] = {}
    for record in channels:
        key = record.names.pg_channel
        if key in seen:
            other = seen[key]
            if other.names == record.names:
                raise BadInput(
                    f"channel {record.name} in {record.module} is recorded twice in"
                    " [tool.scaffold]; delete one of its [[tool.scaffold.channels]] entries"
                )
            raise BadInput(
                f"channel {record.name} in {record.module} and channel {other.name} in"
                f" {other.module} would share the PostgreSQL channel and table names '{key}*';"
                " rename one of them"
            )
        seen[key] = record


def _setting(table: dict[str, Any], key: str, pyproject: Path) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadInput(
            f"[tool.scaffold] in {pyproject} needs a '{key}' setting, for example:"
            f"\n\n{CONFIG_EXAMPLE}"
        )
    if key in ("migrations", "tests", "alembic") and not _inside(value):
        raise BadInput(f"[tool.scaffold] {key} in {pyproject} must be a path inside the project")
    return value


def _inside(path: str) -> bool:
    return not Path(path).is_absolute() and ".." not in Path(path).parts


def _migrations(table: dict[str, Any], pyproject: Path) -> tuple[str, str | None]:
    """The migrations folder and, for an Alembic project, its configuration file.

    With `alembic`, the folder is that of its revisions, unless `migrations` names another.
    """
    if "alembic" not in table:
        return _setting(table, "migrations", pyproject), None
    from scaffold import alembic

    config = _setting(table, "alembic", pyproject)
    if not (pyproject.parent / config).is_file():
        raise BadInput(
            f"[tool.scaffold] alembic in {pyproject} names {config}, which does not exist:"
            " name the configuration you run `alembic -c` with, such as alembic.ini"
        )
    if "migrations" in table:
        return _setting(table, "migrations", pyproject), config
    return alembic.versions_folder(pyproject.parent, config), config


def _channel(entry: object, pyproject: Path, *, alembic: bool) -> ChannelRecord:
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(key), str) for key in ("name", "module", "migration")
    ):
        raise BadInput(
            f"each [[tool.scaffold.channels]] in {pyproject} needs a name, module and migration"
        )
    down_revision = entry.get("down_revision")
    if down_revision is not None and not isinstance(down_revision, str):
        raise BadInput(f"{pyproject} records a down_revision that is not a revision id")
    try:
        record = ChannelRecord(
            entry["name"], entry["module"], entry["migration"], _trigger(entry), down_revision
        )
        record.names  # noqa: B018 - validates the recorded names
    except BadInput as error:
        raise BadInput(f"{pyproject} records an invalid channel: {error}") from error
    if "/" in record.migration or "\\" in record.migration:
        raise BadInput(f"{pyproject} records an invalid migration file name {record.migration!r}")
    expected = ".py" if alembic else ".sql"
    if not record.migration.endswith(expected):
        kind = "an Alembic revision (.py)" if alembic else "a plain SQL file (.sql)"
        raise BadInput(
            f"{pyproject} records the migration {record.migration!r} of channel {record.name} in"
            f" {record.module}, but [tool.scaffold] says migrations are {kind}: a channel keeps"
            " the kind of migration it was created with: put the setting back to remove it"
        )
    return record


def _trigger(entry: dict[str, Any]) -> Trigger | None:
    """The trigger a `[[tool.scaffold.channels]]` entry records, if any."""
    if "table" not in entry and "user_column" not in entry:
        if "columns" in entry:
            raise BadInput("columns are recorded without the table and user_column they belong to")
        return None
    columns = entry.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise BadInput('columns must be a list of column names, like ["id", "status"]')
    return Trigger(
        sql_identifier(str(entry.get("table", "")), "table"),
        sql_identifier(str(entry.get("user_column", "")), "user_column"),
        None if columns is None else payload_columns(columns, "columns"),
    )


def _reference(value: str) -> tuple[str, str] | None:
    """`module:name` as (module, name), or None if it is not one."""
    module, colon, name = value.partition(":")
    if colon and _is_dotted_name(module) and name.isidentifier():
        return module, name
    return None


def _is_dotted_name(value: str) -> bool:
    """Whether `value` can name a module in an import: `shop.main`, not `shop.class`."""
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in value.split("."))
