"""Where everything goes in the target project: the one module that knows its layout."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from scaffold import alembic
from scaffold.names import ChannelNames
from scaffold.project import ChannelRecord, Migration, Project

REGISTRY_MODULE = "sse_channels"
"""The module of the project's package that lists its channels and builds `realtime_router`."""
REALTIME_ROUTER = "realtime_router"
_MIGRATION_NUMBER = re.compile(r"^(\d+)")
_SCHEMA_VERSION_APPLIED = {
    ".sql": re.compile(
        r"INSERT INTO fastapi_pg_sse\.migrations \(version\) VALUES \('([0-9.]+)'\)"
    ),
    ".py": re.compile(r"alembic_(?:create|upgrade)\(\"([0-9.]+)\"\)"),
}
"""What a migration that applies a version of the runtime's schema holds: the line with which
each of the runtime's SQL migrations records its version, or the Alembic helper's call."""


def module_path(project: Project, module: str) -> str:
    """The file of a dotted module, relative to the project root (`src/` layouts included)."""
    relative = "/".join(module.split(".")) + ".py"
    top_package = module.split(".")[0]
    if not (project.root / top_package).is_dir() and (project.root / "src" / top_package).is_dir():
        return f"src/{relative}"
    return relative


def source_root(project: Project) -> Path:
    """The folder the project's modules are imported from: its root, or its `src/` folder."""
    app_path = module_path(project, project.app_module)
    return project.root / "src" if app_path.startswith("src/") else project.root


def registry_module(project: Project) -> str:
    """The dotted name of the channel registry, e.g. `shop.sse_channels`."""
    return f"{project.package}.{REGISTRY_MODULE}"


def registry_path(project: Project) -> str:
    return module_path(project, registry_module(project))


def realtime_conftest_path(project: Project) -> str:
    """The `conftest.py` that tells the runtime's pytest plugin where the app is."""
    return f"{realtime_tests_dir(project)}/conftest.py"


@dataclass(frozen=True)
class Router:
    """A router the app module imports from `module` as `alias` and mounts with include_router."""

    module: str
    name: str
    alias: str

    @property
    def path(self) -> str:
        """`module.name`: what the router is, whatever name the app module gives it."""
        return f"{self.module}.{self.name}"


def routers(project: Project, layouts: Sequence["ChannelLayout"]) -> list[Router]:
    """The routers the app module mounts: the registry's, which holds the channels' routes, if
    the project has channels (`layouts`, their layouts); and each channel's for a project made
    before the runtime owned its schema, whose app module mounted them itself."""
    if not layouts:
        return []
    registry = Router(registry_module(project), REALTIME_ROUTER, REALTIME_ROUTER)
    if not project.legacy:
        return [registry]
    channels = [
        Router(layout.controller_module, "router", layout.router_alias) for layout in layouts
    ]
    return [registry, *channels]


def route_prefix(project: Project, names: ChannelNames) -> str:
    """The path of a channel's router: the project's prefix, then the channel's own."""
    return f"{project.prefix}{names.route_prefix}"


def realtime_tests_dir(project: Project) -> str:
    return f"{project.tests.rstrip('/')}/realtime"


@dataclass(frozen=True)
class ChannelLayout:
    """The modules and files of one channel."""

    record: ChannelRecord
    names: ChannelNames
    events_module: str
    """The channel's events and their payloads: created once, then the user's."""
    service_module: str
    controller_module: str
    constant: str
    router_alias: str
    events_path: str
    service_path: str
    controller_path: str
    migrations: dict[str, Migration]
    """The channel's migrations scaffold renders, by path: that of its trigger, or, for a channel
    made before the runtime owned its schema, the one that upgraded it (its first is history)."""
    test_path: str
    package_inits: tuple[str, ...]
    """`__init__.py` files the channel's modules need; created once, then the user's."""
    events_alias: str
    """The name, in the events file, of the union of the channel's events: `StockEvent`."""

    route_prefix: str
    """The path of the channel's router (`route_prefix`)."""

    @property
    def route(self) -> str:
        """The path of the channel's SSE endpoint."""
        return f"{self.route_prefix}/stream"

    @property
    def files(self) -> tuple[str, ...]:
        """The channel's own files."""
        return (
            self.events_path,
            self.service_path,
            self.controller_path,
            *self.migrations,
            self.test_path,
        )


def channel_layout(project: Project, record: ChannelRecord) -> ChannelLayout:
    names = record.names
    module_package = f"{project.package}.modules.{names.module_package}"
    events_module = f"{module_package}.services.{names.channel_snake}_events"
    service_module = f"{module_package}.services.{names.channel_snake}_notify_service"
    controller_module = f"{module_package}.adapters.inbound.{names.channel_snake}_sse_controller"
    packages = (
        f"{project.package}.modules",
        module_package,
        f"{module_package}.services",
        f"{module_package}.adapters",
        f"{module_package}.adapters.inbound",
    )
    inits = [module_path(project, f"{package}.__init__") for package in packages]
    return ChannelLayout(
        record=record,
        names=names,
        events_module=events_module,
        service_module=service_module,
        controller_module=controller_module,
        constant=f"{names.channel_name.upper()}_CHANNEL",
        router_alias=f"{names.channel_name}_sse_router",
        events_path=module_path(project, events_module),
        service_path=module_path(project, service_module),
        controller_path=module_path(project, controller_module),
        migrations=_rendered_migrations(project, record),
        test_path=f"{realtime_tests_dir(project)}/test_{names.channel_name}_sse_channel.py",
        package_inits=tuple(inits),
        events_alias=f"{names.channel_class}Event",
        route_prefix=route_prefix(project, names),
    )


class TypeScriptPaths(NamedTuple):
    """The TypeScript client's files: the same client in every project, and its channels."""

    client: str
    channels: str


def typescript_paths(project: Project) -> TypeScriptPaths | None:
    """Where the TypeScript client goes; None when `[tool.scaffold] typescript` is not set."""
    if project.typescript is None:
        return None
    folder = project.typescript.rstrip("/")
    return TypeScriptPaths(f"{folder}/client.ts", f"{folder}/channels.ts")


def _rendered_migrations(project: Project, record: ChannelRecord) -> dict[str, Migration]:
    """The channel's migrations scaffold renders (see `ChannelLayout.migrations`)."""
    if project.legacy:  # none yet: its first, of its tables and functions, is history
        return {}
    rendered = record.upgrade if record.upgrade is not None else record.migration
    return {} if rendered is None else {migration_path(project, rendered): rendered}


def migration_path(project: Project, migration: Migration) -> str:
    return f"{project.migrations.rstrip('/')}/{migration.name}"


def sql_migrations(project: Project) -> list[Path]:
    """The project's SQL migrations, in the order they apply."""
    return sorted((project.root / project.migrations).glob("*.sql"))


def schema_migrations_on_disk(project: Project) -> dict[str, Migration]:
    """The migrations of the project that apply a version of the runtime's schema, written by
    hand (the output of `python -m fastapi_pg_sse schema`) or by scaffold, by version."""
    files: list[tuple[Path, str | None]]
    if project.alembic is None:
        files = [(path, None) for path in sql_migrations(project)]
        pattern = _SCHEMA_VERSION_APPLIED[".sql"]
    else:
        revisions = alembic.read_revisions(project.root, project.migrations)
        files = [(project.root / r.path, next(iter(r.down_revisions), None)) for r in revisions]
        pattern = _SCHEMA_VERSION_APPLIED[".py"]
    return {
        version: Migration(path.name, down_revision)
        for path, down_revision in files
        for version in pattern.findall(path.read_text(encoding="utf-8"))
    }


def schema_slug(version: str) -> str:
    """What the migration to version `version` of the runtime's schema is called."""
    return f"fastapi_pg_sse_schema_{version.replace('.', '_')}"


def trigger_slug(names: ChannelNames) -> str:
    """What the migration of a channel's trigger is called."""
    return f"{names.channel_name}_sse_trigger"


def upgrade_slug(names: ChannelNames) -> str:
    """What the migration that upgrades a channel made before the runtime owned its schema is
    called."""
    return f"upgrade_{names.channel_name}_sse_channel"


def removal_slug(names: ChannelNames) -> str:
    """What the migration that removes a channel is called."""
    return f"remove_{names.channel_name}_sse_channel"


def new_migrations(project: Project, slugs: Sequence[str]) -> list[Migration]:
    """Migrations called `slugs`, in that order, after every existing one: SQL files numbered
    on, or Alembic revisions each following the one before, the first the current head."""
    if project.alembic is None:
        first, width = _next_migration_number(project)
        return [Migration(f"{first + n:0{width}d}_{slug}.sql") for n, slug in enumerate(slugs)]
    migrations: list[Migration] = []
    down_revision = alembic.head(project.root, project.migrations)
    for slug in slugs:
        migrations.append(
            Migration(f"{alembic.revision_id(slug, down_revision)}_{slug}.py", down_revision)
        )
        down_revision = migrations[-1].revision
    return migrations


def _next_migration_number(project: Project) -> tuple[int, int]:
    """The next free number in the migrations folder, and the width existing files pad to."""
    recorded = [record.migration for record in project.schema]
    recorded += [m for record in project.channels for m in (record.migration, record.upgrade) if m]
    names = [path.name for path in sql_migrations(project)] + [m.name for m in recorded]
    numbers = [match.group(1) for name in names if (match := _MIGRATION_NUMBER.match(name))]
    width = max((len(number) for number in numbers), default=4)
    return max((int(number) for number in numbers), default=0) + 1, width
