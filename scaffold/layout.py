"""Where everything goes in the target project: the one module that knows its layout."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from scaffold import alembic
from scaffold.names import ChannelNames
from scaffold.project import ChannelRecord, Project

REGISTRY_MODULE = "sse_channels"
"""The module of the project's package that lists its channels and builds `realtime_router`."""
REALTIME_ROUTER = "realtime_router"
_MIGRATION_NUMBER = re.compile(r"^(\d+)")


def module_path(project: Project, module: str) -> str:
    """The file of a dotted module, relative to the project root (`src/` layouts included)."""
    relative = "/".join(module.split(".")) + ".py"
    top_package = module.split(".")[0]
    if not (project.root / top_package).is_dir() and (project.root / "src" / top_package).is_dir():
        return f"src/{relative}"
    return relative


def registry_module(project: Project) -> str:
    """The dotted name of the channel registry, e.g. `shop.sse_channels`."""
    return f"{project.package}.{REGISTRY_MODULE}"


def registry_path(project: Project) -> str:
    return module_path(project, registry_module(project))


def realtime_conftest_path(project: Project) -> str:
    """The `conftest.py` that tells the runtime's pytest plugin where the app is."""
    return f"{realtime_tests_dir(project)}/conftest.py"


class Router(NamedTuple):
    """A router the app module imports from `module` as `alias` and mounts with include_router."""

    module: str
    name: str
    alias: str


def routers(project: Project, layouts: Sequence["ChannelLayout"]) -> list[Router]:
    """The routers the app module mounts: the registry's and each channel's (`layouts`, those of
    the project's channels), if any channel."""
    if not layouts:
        return []
    registry = Router(registry_module(project), REALTIME_ROUTER, REALTIME_ROUTER)
    channels = [
        Router(layout.controller_module, "router", layout.router_alias) for layout in layouts
    ]
    return [registry, *channels]


def realtime_tests_dir(project: Project) -> str:
    return f"{project.tests.rstrip('/')}/realtime"


class RowFactory(NamedTuple):
    """The user's function that inserts the row a trigger test needs: created once, then theirs."""

    path: str
    module: str
    function: str


def row_factory(project: Project, table: str) -> RowFactory:
    """The row factory of `table`, beside the generated tests that import it.

    When the project's tests folder is a package, so is the generated tests' folder (see
    `channel_layout`), and the factory is imported by its full name: pytest and mypy then agree
    on what the module is called.
    """
    folder = realtime_tests_dir(project)
    name = f"{table}_rows"
    module = f"{folder.replace('/', '.')}.{name}" if _tests_are_a_package(project) else name
    return RowFactory(f"{folder}/{name}.py", module, f"insert_{table}_row")


def _tests_are_a_package(project: Project) -> bool:
    return (project.root / project.tests / "__init__.py").is_file()


class Migration(NamedTuple):
    """A channel's migration, or its removal's: created once, the user's from then on."""

    name: str
    """Its file name in the migrations folder: `0002_<slug>.sql`, or `<revision>_<slug>.py`."""
    down_revision: str | None = None
    """For an Alembic revision, the head it follows; None for the first one, or a SQL file."""

    @property
    def revision(self) -> str:
        """The Alembic revision id, which its file name starts with."""
        return self.name.partition("_")[0]


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
    migration_path: str
    test_path: str
    package_inits: tuple[str, ...]
    """`__init__.py` files the channel's modules need; created once, then the user's."""
    row_factory: RowFactory | None
    """Where the trigger test gets its row, for a channel with a trigger."""
    events_alias: str
    """The name, in the events file, of the union of the channel's events: `StockEvent`."""

    @property
    def route(self) -> str:
        """The path of the channel's SSE endpoint."""
        return f"{self.names.route_prefix}/stream"

    @property
    def migration(self) -> Migration:
        """The migration that created the channel."""
        return Migration(self.record.migration, self.record.down_revision)

    @property
    def files(self) -> tuple[str, ...]:
        """The channel's own files."""
        return (
            self.events_path,
            self.service_path,
            self.controller_path,
            self.migration_path,
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
    if record.trigger and _tests_are_a_package(project):  # see row_factory
        inits.append(f"{realtime_tests_dir(project)}/__init__.py")
    return ChannelLayout(
        record=record,
        names=names,
        events_module=events_module,
        service_module=service_module,
        controller_module=controller_module,
        constant=f"{names.pg_channel.upper()}_CHANNEL",
        router_alias=f"{names.pg_channel}_sse_router",
        events_path=module_path(project, events_module),
        service_path=module_path(project, service_module),
        controller_path=module_path(project, controller_module),
        migration_path=migration_path(project, record.migration),
        test_path=f"{realtime_tests_dir(project)}/test_{names.pg_channel}_sse_channel.py",
        package_inits=tuple(inits),
        row_factory=row_factory(project, record.trigger.table) if record.trigger else None,
        events_alias=f"{names.channel_class}Event",
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


def migration_path(project: Project, name: str) -> str:
    return f"{project.migrations.rstrip('/')}/{name}"


def sql_migrations(project: Project) -> list[Path]:
    """The project's SQL migrations, in the order they apply."""
    return sorted((project.root / project.migrations).glob("*.sql"))


def creation_migration(project: Project, names: ChannelNames) -> Migration:
    """The migration that creates a channel, after every existing one."""
    return _new_migration(project, f"{names.pg_channel}_sse_channel")


def removal_migration(project: Project, names: ChannelNames) -> Migration:
    """The migration that removes a channel, after every existing one."""
    return _new_migration(project, f"remove_{names.pg_channel}_sse_channel")


def _new_migration(project: Project, slug: str) -> Migration:
    """The next SQL file by number, or an Alembic revision chained to the current head."""
    if project.alembic is None:
        return Migration(f"{_next_migration_number(project)}_{slug}.sql")
    down_revision = alembic.head(project.root, project.migrations)
    return Migration(f"{alembic.revision_id(slug, down_revision)}_{slug}.py", down_revision)


def _next_migration_number(project: Project) -> str:
    """The next free number in the migrations folder, zero-padded like the existing files."""
    numbers = [
        match.group(1)
        for path in sql_migrations(project)
        if (match := _MIGRATION_NUMBER.match(path.name))
    ]
    numbers += [record.migration.split("_")[0] for record in project.channels]
    width = max((len(number) for number in numbers), default=4)
    following = max((int(number) for number in numbers if number.isdigit()), default=0) + 1
    return f"{following:0{width}d}"
