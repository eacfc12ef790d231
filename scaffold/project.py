"""The target project as `scaffold` sees it: its `[tool.scaffold]` table and recorded channels."""

import json
import keyword
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffold.errors import BadInput
from scaffold.names import (
    ChannelNames,
    channel_names,
    column_path,
    payload_columns,
    sql_identifier,
)

SETTINGS_HELP = {
    "package": "the Python package that holds the application",
    "app": "the FastAPI application or its factory, as module:name",
    "migrations": "folder of plain SQL migrations, applied in file-name order",
    "alembic": "Alembic's configuration: migrations are revisions in its script_location",
    "tests": "folder of the project's tests",
    "prefix": "path before every stream route, as the app serves its API: /api/v1",
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


AUDIENCES = ("user", "group")
"""To whom a trigger emits each changed row's events: the user, or the group, its column names."""


@dataclass(frozen=True)
class Trigger:
    """Emit from a trigger on a table, to the user (or the group) in `column`."""

    table: str
    column: str
    """The column of the changed row that holds its user (or group), or the way to it through a
    foreign key of the row: `article_id.author_id` is `author_id` of the row `article_id`
    references."""
    columns: tuple[str, ...] | None = None
    """The columns each event carries (`--columns`); None: every column of the row."""
    audience: str = "user"
    """`user`: each event goes to the user `column` names; `group`: to every member of the group
    it names (one of `AUDIENCES`)."""

    @property
    def key(self) -> str:
        """The key that records `column`, and `fastapi_pg_sse.create_trigger`'s argument that
        takes it: `user_column` or `group_column`."""
        return f"{self.audience}_column"

    @property
    def option(self) -> str:
        """The command line option that names `column`: `--user-column` or `--group-column`."""
        return f"--{self.audience}-column"

    @property
    def foreign_key(self) -> str | None:
        """The column whose foreign key leads to the recipient's row, if the recipient is not in
        the row."""
        foreign_key, dot, _ = self.column.rpartition(".")
        return foreign_key if dot else None

    @property
    def recipient_column(self) -> str:
        """The column that holds the user (or group): of the changed row, or of the row
        `foreign_key` references."""
        return self.column.rpartition(".")[2]

    @property
    def recipient(self) -> str:
        """To whom each event goes, in words."""
        if self.foreign_key is None:
            holder = f"each changed row's {self.recipient_column}"
        else:
            holder = (
                f"the {self.recipient_column} of the row that each changed row's"
                f" {self.foreign_key} references"
            )
        return holder if self.audience == "user" else f"the members of the group in {holder}"

    @property
    def target(self) -> str:
        """`table.column`: where the trigger finds each event's user (or group)."""
        return f"{self.table}.{self.column}"

    @property
    def payload(self) -> str:
        """What each event carries, in words: `every column of baskets` or `id, stock`."""
        if self.columns is None:
            return f"every column of {self.table}"
        return ", ".join(self.columns)

    def as_json(self) -> dict[str, object]:
        return {
            "table": self.table,
            "user_column": self.column if self.audience == "user" else None,
            "group_column": self.column if self.audience == "group" else None,
            "columns": None if self.columns is None else list(self.columns),
            "payload": self.payload,
        }


@dataclass(frozen=True)
class Migration:
    """A migration scaffold wrote: created once, the user's from then on."""

    name: str
    """Its file name in the migrations folder: `0002_<slug>.sql`, or `<revision>_<slug>.py`."""
    down_revision: str | None = None
    """For an Alembic revision, the head it follows; None for the first one, or a SQL file."""

    @property
    def revision(self) -> str:
        """The Alembic revision id, which its file name starts with."""
        return self.name.partition("_")[0]


MIGRATION_KEYS = (("migration", "down_revision"), ("upgrade", "upgrade_down_revision"))
"""The keys of a channel's `migration` and `upgrade` in `[[tool.scaffold.channels]]`, each with
that of the revision it follows."""


@dataclass(frozen=True)
class ChannelRecord:
    """One `[[tool.scaffold.channels]]` entry: what the user asked for, and its migrations."""

    name: str
    module: str
    trigger: Trigger | None = None
    migration: Migration | None = None
    """The migration that made the channel's SQL objects: that of its trigger (a channel without
    one has none), or, for a channel made before the runtime owned its schema (fastapi-pg-sse
    0.4 and earlier), that of its tables and functions."""
    upgrade: Migration | None = None
    """For a channel made before the runtime owned its schema: the migration that replaced its
    tables and functions with the runtime's (see `Project.legacy`)."""

    @property
    def names(self) -> ChannelNames:
        return channel_names(self.name, self.module)

    def as_toml(self) -> dict[str, str | list[str]]:
        """The entry, its keys in the order scaffold has always written them."""
        table: dict[str, str | list[str]] = {"name": self.name, "module": self.module}
        migrations = zip(MIGRATION_KEYS, (self.migration, self.upgrade), strict=True)
        for (key, down_key), migration in migrations:
            if migration is not None:
                table[key] = migration.name
                if migration.down_revision is not None:
                    table[down_key] = migration.down_revision
            if key == "migration" and self.trigger is not None:
                table |= {"table": self.trigger.table, self.trigger.key: self.trigger.column}
                if self.trigger.columns is not None:
                    table["columns"] = list(self.trigger.columns)
        return table


@dataclass(frozen=True)
class SchemaRecord:
    """One `[[tool.scaffold.schema]]` entry: a version of the runtime's database schema, and the
    migration of the project that applies it."""

    version: str
    migration: Migration

    def as_toml(self) -> dict[str, str]:
        table = {"version": self.version, "migration": self.migration.name}
        if self.migration.down_revision is not None:
            table["down_revision"] = self.migration.down_revision
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
    groups: tuple[str, str] | None = None
    """The project's function that says which groups a user is in, (module, name); None: the
    groups claim of the user's token."""
    alembic: str | None = None
    """Alembic's configuration file (what `alembic -c` takes), relative to the root, when the
    migrations are Alembic revisions; None for plain SQL files."""
    typescript: str | None = None
    """The folder, relative to the root, of the generated TypeScript client; None: no client."""
    schema: tuple[SchemaRecord, ...] = ()
    """The versions of the runtime's schema the project's migrations apply, oldest first."""
    prefix: str = ""
    """The path before every stream route (`/api/v1`), or none."""

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def legacy(self) -> bool:
        """Whether its channels were made before the runtime owned its schema (scaffold 0.4 and
        earlier): each has tables and functions of its own, until a migration upgrades it."""
        return bool(self.channels) and not self.schema


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
    auth = _function(
        table,
        "auth",
        pyproject,
        "a FastAPI dependency that returns the user id, like 'shop.auth:current_user_id'",
    )
    groups = _function(
        table,
        "groups",
        pyproject,
        "the function that gives a user's groups, like 'shop.auth:groups_of'",
    )
    if not _is_dotted_name(settings["package"]):
        raise BadInput(f"[tool.scaffold] package in {pyproject} must be a package name like 'shop'")
    channels = recorded_channels(table, str(pyproject))
    kind = _migration_suffix(table)
    schema = tuple(_schema(entry, pyproject, kind) for entry in _entries(table, "schema"))
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
        auth=auth,
        groups=groups,
        alembic=alembic,
        typescript=typescript,
        schema=schema,
        prefix=checked_prefix(table.get("prefix", ""), f"[tool.scaffold] prefix in {pyproject}"),
    )


def recorded_channels(table: dict[str, Any], pyproject: str) -> tuple[ChannelRecord, ...]:
    """The channels a `[tool.scaffold]` table records, validated; `pyproject` names its file in
    errors."""
    kind = _migration_suffix(table)
    channels = tuple(_channel(entry, pyproject, kind) for entry in _entries(table, "channels"))
    check_distinct(channels)
    return channels


def _migration_suffix(table: dict[str, Any]) -> str:
    """What the project's migrations end with: Alembic revisions, or SQL files."""
    return ".py" if "alembic" in table else ".sql"


_ROUTE_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+)*")
"""A route prefix scaffold writes into routes as it is: no path parameters, nothing to escape."""


def checked_prefix(value: object, where: str) -> str:
    """`value`, the path before every stream route, if scaffold can write it into routes."""
    if not isinstance(value, str) or not _ROUTE_PREFIX.fullmatch(value):
        raise BadInput(
            f'{where} must be a path such as "/api/v1": a slash before each segment, none at the'
            f" end, and only letters, digits, '-', '_' and '.'; not {value!r}"
        )
    return value


def read_pyproject(pyproject: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{pyproject} is not valid TOML: {error}") from error


def check_distinct(channels: tuple[ChannelRecord, ...]) -> None:
    """Refuse two channels that would share a Python module or the runtime's channel name."""
    seen: dict[str, ChannelRecord] = {}
    for record in channels:
        key = record.names.channel_name
        if key in seen:
            other = seen[key]
            if other.names == record.names:
                raise BadInput(
                    f"channel {record.name} in {record.module} is recorded twice in"
                    " [tool.scaffold]; delete one of its [[tool.scaffold.channels]] entries"
                )
            raise BadInput(
                f"channel {record.name} in {record.module} and channel {other.name} in"
                f" {other.module} would share the channel name '{key}', which their events carry;"
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


def _entries(table: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The `[[tool.scaffold.<key>]]` entries."""
    entries = table.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise BadInput(f"[tool.scaffold] {key} must be [[tool.scaffold.{key}]] tables")
    return entries


def _channel(entry: dict[str, Any], pyproject: str, kind: str) -> ChannelRecord:
    if not all(isinstance(entry.get(key), str) for key in ("name", "module")):
        raise BadInput(f"each [[tool.scaffold.channels]] in {pyproject} needs a name and module")
    try:
        migration, upgrade = (_migration(entry, *keys, kind) for keys in MIGRATION_KEYS)
        record = ChannelRecord(entry["name"], entry["module"], _trigger(entry), migration, upgrade)
        record.names  # noqa: B018 - validates the recorded names
    except BadInput as error:
        raise BadInput(
            f"{pyproject} records an invalid channel {entry['name']} in {entry['module']}: {error}"
        ) from error
    return record


def _schema(entry: dict[str, Any], pyproject: Path, kind: str) -> SchemaRecord:
    version = entry.get("version")
    try:
        migration = _migration(entry, "migration", "down_revision", kind)
        if not isinstance(version, str) or migration is None:
            raise BadInput("it needs a version and a migration")
    except BadInput as error:
        raise BadInput(
            f"{pyproject} records an invalid [[tool.scaffold.schema]] entry: {error}"
        ) from error
    return SchemaRecord(version, migration)


def _migration(entry: dict[str, Any], key: str, down_key: str, kind: str) -> Migration | None:
    """The migration an entry records under `key`, if any, and the revision it follows."""
    name, down_revision = entry.get(key), entry.get(down_key)
    if name is None:
        return None
    if not isinstance(name, str) or "/" in name or "\\" in name:
        raise BadInput(f"{key} must be a file name of the migrations folder, not {name!r}")
    if not name.endswith(kind):
        expected = "Alembic revisions (.py)" if kind == ".py" else "plain SQL files (.sql)"
        raise BadInput(
            f"its {key} {name!r} is not one of the {expected} that [tool.scaffold] says the"
            " migrations are: the migrations a project has written stay what they are; put the"
            " setting back"
        )
    if down_revision is not None and not isinstance(down_revision, str):
        raise BadInput(f"its {down_key} is not a revision id")
    return Migration(name, down_revision)


def _trigger(entry: dict[str, Any]) -> Trigger | None:
    """The trigger a `[[tool.scaffold.channels]]` entry records, if any."""
    keys = [f"{audience}_column" for audience in AUDIENCES if f"{audience}_column" in entry]
    if "table" not in entry and not keys:
        if "columns" in entry:
            raise BadInput(
                "columns are recorded without the table and user_column (or group_column) they"
                " belong to"
            )
        return None
    if len(keys) != 1:
        raise BadInput(
            "a trigger records its table with either user_column or group_column, not"
            f" {' and '.join(keys) or 'neither'}"
        )
    columns = entry.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise BadInput('columns must be a list of column names, like ["id", "status"]')
    (key,) = keys
    return Trigger(
        sql_identifier(str(entry.get("table", "")), "table"),
        column_path(str(entry[key]), key),
        None if columns is None else payload_columns(columns, "columns"),
        audience=key.removesuffix("_column"),
    )


def _function(
    table: dict[str, Any], key: str, pyproject: Path, what: str
) -> tuple[str, str] | None:
    """The function the `key` setting names as `module:name`, if it is set."""
    value = table.get(key)
    if value is None:
        return None
    reference = _reference(value) if isinstance(value, str) else None
    if reference is None:
        raise BadInput(f"[tool.scaffold] {key} in {pyproject} must name {what}")
    return reference


def _reference(value: str) -> tuple[str, str] | None:
    """`module:name` as (module, name), or None if it is not one."""
    module, colon, name = value.partition(":")
    if colon and _is_dotted_name(module) and name.isidentifier():
        return module, name
    return None


def _is_dotted_name(value: str) -> bool:
    """Whether `value` can name a module in an import: `shop.main`, not `shop.class`."""
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in value.split("."))
