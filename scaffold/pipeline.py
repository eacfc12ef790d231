"""render -> plan: the desired state of a project, as one set of files, for every command.

Every command first brings the project's records up to date with the runtime's database schema
(`up_to_date`); then what the disk should hold is rendered and compared with it.

libcst and tomlkit are imported only when an edit needs them, so that `scaffold check` on a
project in sync loads neither; the TypeScript client's modules only for a project that has one.
"""

import ast
import dataclasses
import tomllib
from collections.abc import Sequence
from pathlib import Path

from scaffold import runtime_schema
from scaffold.dependencies.changes import Raise, too_low
from scaffold.errors import BadInput
from scaffold.layout import (
    ChannelLayout,
    Router,
    channel_layout,
    migration_path,
    module_path,
    new_migrations,
    routers,
    schema_migrations_on_disk,
    schema_slug,
    typescript_paths,
    upgrade_slug,
)
from scaffold.lock import LOCK_PATH, Lock, lock_text, read_lock, sha256_of
from scaffold.plan import Desired, Ownership, Plan, make_plan
from scaffold.project import Migration, Project, SchemaRecord
from scaffold.pycode import from_import
from scaffold.render import (
    render_channel,
    render_project_files,
    render_schema_migration,
    users_files,
)

Layouts = Sequence[ChannelLayout]
"""The layout of each of a project's channels, computed once per command."""


def layouts_of(project: Project) -> Layouts:
    return [channel_layout(project, record) for record in project.channels]


def up_to_date(
    recorded: Project, *, adding_channel: bool = False, then: Sequence[str] = ()
) -> tuple[Project, list[Migration]]:
    """`recorded`, its records brought up to date with the runtime's database schema; and
    migrations called `then` (a command's own) allocated after those this needs.

    A project with channels (or `adding_channel`) gets a migration that creates the runtime's
    schema at its newest version, or, once it has one, a migration for each newer version,
    unless one of its migrations applies it already (the output of `python -m fastapi_pg_sse
    schema`, say): that one is recorded. Its channels made before the runtime owned its schema
    (scaffold 0.4) each get one that upgrades them to it.
    """
    recorded_versions = [record.version for record in recorded.schema]
    unknown = sorted(set(recorded_versions) - set(runtime_schema.versions()))
    if unknown:
        raise BadInput(
            f"{recorded.pyproject} records migrations to fastapi-pg-sse's schema"
            f" {', '.join(unknown)}, which this scaffold does not know (it knows"
            f" {', '.join(runtime_schema.versions())}): upgrade scaffold and fastapi-pg-sse"
        )
    pending: list[str] = []
    on_disk: dict[str, Migration] = {}
    if recorded.channels or adding_channel:
        pending, on_disk = _schema_versions_to_record(recorded, recorded_versions)
    to_write = [version for version in pending if version not in on_disk]
    legacy = recorded.channels if recorded.legacy else ()
    slugs = [*map(schema_slug, to_write), *(upgrade_slug(r.names) for r in legacy), *then]
    migrations = iter(new_migrations(recorded, slugs) if slugs else [])
    written = {version: next(migrations) for version in to_write}
    schema = (
        *recorded.schema,
        *(SchemaRecord(v, on_disk[v] if v in on_disk else written[v]) for v in pending),
    )
    channels = tuple(
        dataclasses.replace(record, upgrade=next(migrations)) if record in legacy else record
        for record in recorded.channels
    )
    return dataclasses.replace(recorded, schema=schema, channels=channels), list(migrations)


def _schema_versions_to_record(
    project: Project, recorded: list[str]
) -> tuple[list[str], dict[str, Migration]]:
    """The versions of the runtime's schema a project with channels lacks records of: those
    after the newest it records; or, with none recorded, those its own migrations apply and
    those after; or, with none there either, the newest, which its first migration creates.
    And the project's migrations that apply a version, by version: read only when a version
    may be missing, so that `check` of a project in sync reads none of them."""
    if recorded:
        pending = runtime_schema.versions_after(runtime_schema.newest(recorded))
        return pending, schema_migrations_on_disk(project) if pending else {}
    on_disk = schema_migrations_on_disk(project)
    applied = [version for version in runtime_schema.versions() if version in on_disk]
    if applied:
        return applied + runtime_schema.versions_after(applied[-1]), on_disk
    return [runtime_schema.versions()[-1]], on_disk


def generated_files(project: Project, layouts: Layouts | None = None) -> dict[str, str]:
    """Every file scaffold generates for the project's recorded channels and its runtime
    schema, and those it writes once for the user that are missing (it writes them again);
    none without channels."""
    if not project.channels:
        return {}
    layouts = layouts_of(project) if layouts is None else layouts
    files = dict(render_schema_migration(project, record) for record in project.schema)
    files |= render_project_files(project, layouts)
    for layout in layouts:
        files |= render_channel(project, layout)
        files |= {
            path: render()
            for path, render in users_files(project, layout).items()
            if not (project.root / path).is_file()
        }
    paths = typescript_paths(project)
    if paths is not None:
        from scaffold.ts_client import typescript_files

        files |= typescript_files(project.root, paths, layouts, files)
    return files


def project_routers(project: Project) -> list[Router]:
    """The routers the project's app module mounts (`layout.routers`)."""
    return routers(project, layouts_of(project))


def app_package(project: Project) -> str:
    """The package of the app module, against which its relative imports resolve."""
    return project.app_module.rpartition(".")[0]


def sync_plan(recorded: Project, project: Project) -> Plan:
    """What `scaffold sync` writes and `scaffold check` reports: `project`, which is `recorded`
    brought up to date (`up_to_date`).

    Each generated file of its channels, their lock, and the app module's wiring, compared with
    what they render: a generated file that differs is an update when it holds what the lock says
    scaffold wrote (it is outdated), and a conflict otherwise (it was edited by hand); the
    migrations its records now name, and the records themselves. Package `__init__.py` files are
    the user's, and so are the dependencies in `pyproject.toml`, but for a requirement of the
    runtime, of the tests or of Python that allows older versions than the generated code needs:
    its minimum is raised.
    """
    layouts = layouts_of(project)
    recorded_layouts = layouts if project == recorded else layouts_of(recorded)
    desired = _generated_state(
        project, layouts, recorded=recorded, recorded_layouts=recorded_layouts
    )
    if project != recorded or (project.channels and low_requirements(project)):
        desired[project.pyproject.name] = _pyproject(project, add_packages=False)
    return make_plan(project.root, desired)


def low_requirements(project: Project) -> list[Raise]:
    """The requirements `pyproject.toml` lists below what the generated code needs, read with
    the standard library: tomlkit, which edits them, is loaded only when there are some."""
    return too_low(tomllib.loads(project.pyproject.read_text(encoding="utf-8")))


def desired_state(project: Project, *, recorded: Project) -> dict[str, Desired]:
    """What the disk should hold once the project's channels are `project.channels` (a command
    adding or removing one, on the project brought `up_to_date`), its packages required.

    `recorded` is the project as its manifest describes it before the command: a generated file
    still equal to what it renders may be updated or deleted, any other difference is a conflict.
    The migrations of removed channels stay: they are history.
    """
    layouts, recorded_layouts = layouts_of(project), layouts_of(recorded)
    desired = _generated_state(
        project, layouts, recorded=recorded, recorded_layouts=recorded_layouts
    )
    desired |= _package_inits(project, layouts, recorded_layouts, desired)
    desired[project.pyproject.name] = _pyproject(project, add_packages=True)
    return desired


def plan_project(project: Project, *, recorded: Project) -> Plan:
    return make_plan(project.root, desired_state(project, recorded=recorded))


def _generated_state(
    project: Project, layouts: Layouts, *, recorded: Project, recorded_layouts: Layouts
) -> dict[str, Desired]:
    """The generated files, their lock and the app module; files only `recorded` generates are
    deleted.

    A generated file may be replaced when it holds what `recorded` renders, or what the lock says
    scaffold last wrote there (an earlier scaffold's templates, say); otherwise it was edited by
    hand and differing from what `project` renders is a conflict.
    """
    if project.channels:
        _check_functions(project)
    files = generated_files(project, layouts)
    baseline = files if recorded == project else generated_files(recorded, recorded_layouts)
    lock = read_lock(project.root)
    # Written once, then never checked nor deleted: the migrations (a database may have applied
    # them, they are history); and never checked: the user's files.
    migrations = _migration_paths(project, layouts) | _migration_paths(recorded, recorded_layouts)
    users_paths = _users_paths(project, layouts)
    created_once = migrations | users_paths | _users_paths(recorded, recorded_layouts)
    desired = {
        path: Desired(
            text, _ownership(path, created_once), baseline.get(path), lock.generated.get(path)
        )
        for path, text in files.items()
    }
    desired |= {
        path: Desired(None, _ownership(path, created_once), text, lock.generated.get(path))
        for path, text in baseline.items()
        if path not in files and path not in migrations
    }
    desired |= _unused_users_files(project, users_paths, recorded, recorded_layouts, lock)
    generated = {path: text for path, text in files.items() if path not in created_once}
    written_once = {
        path: sha256_of(files[path]) if path in files else lock.users[path]
        for path in users_paths
        if path in files or path in lock.users
    }
    desired[LOCK_PATH] = Desired(lock_text(generated, written_once), Ownership.RECORD)
    if project.channels or recorded.channels:
        app_path = module_path(project, project.app_module)
        wanted = routers(project, layouts)
        removed = [router for router in routers(recorded, recorded_layouts) if router not in wanted]
        desired[app_path] = Desired(
            _wired_app(project, app_path, wanted, removed), Ownership.EDITED
        )
    return desired


def _check_functions(project: Project) -> None:
    """Refuse an `auth` or `groups` setting that names what its module, one of the project's,
    certainly does not define: the registry imports it, and the app would not start. The module
    is read with `ast`, never imported; one of another distribution, or that does not parse,
    is not checked."""
    for setting, reference in (("auth", project.auth), ("groups", project.groups)):
        if reference is not None and (problem := _definition_problem(project, *reference)):
            raise BadInput(f'[tool.scaffold] {setting} = "{":".join(reference)}": {problem}')


def _definition_problem(project: Project, module: str, name: str) -> str | None:
    """Why the project's `module` certainly does not define `name`, if it certainly does not."""
    relative = module_path(project, module)
    source = project.root / "src" if relative.startswith("src/") else project.root
    if not (source / module.split(".")[0]).is_dir():
        return None  # not a package of the project's
    candidates = [relative, f"{relative.removesuffix('.py')}/__init__.py"]
    path = next((project.root / c for c in candidates if (project.root / c).is_file()), None)
    if path is None:
        return f"the project has no module {module} ({' or '.join(candidates)})"
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return None
    if {name, "*"} & _bound_names(tree):
        return None
    return f"{path.relative_to(project.root).as_posix()} defines no {name}"


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the module binds anywhere (lenient: a nested one counts), and `*` for a star
    import, which may bind any."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return names


def _unused_users_files(
    project: Project, kept: set[str], recorded: Project, recorded_layouts: Layouts, lock: Lock
) -> dict[str, Desired]:
    """The files written once for the user that no channel needs any more (not `kept`): those of
    the channels that go, and those the lock records that scaffold writes no more (an earlier
    version's). Each is deleted if it still holds what scaffold wrote, as the lock's sha256
    tells (or, with no record there, from an earlier scaffold, if it is what scaffold writes
    today)."""
    unused = {
        path: Desired(None, Ownership.CREATED_ONCE, None, written)
        for path, written in lock.users.items()
        if path not in kept
    }
    for layout in recorded_layouts:
        for path, render in users_files(recorded, layout).items():
            if path in kept:
                continue
            written = lock.users.get(path)
            today = render() if written is None and (project.root / path).is_file() else None
            unused[path] = Desired(None, Ownership.CREATED_ONCE, today, written)
    return unused


def migrations_in_order(project: Project, layouts: Layouts | None = None) -> list[str]:
    """The migrations scaffold renders for the project: its schema's, then its channels'; those
    one command writes come in the order they apply."""
    layouts = layouts_of(project) if layouts is None else layouts
    schema = [migration_path(project, record.migration) for record in project.schema]
    return schema + [path for layout in layouts for path in layout.migrations]


def _migration_paths(project: Project, layouts: Layouts) -> set[str]:
    return set(migrations_in_order(project, layouts))


def _users_paths(project: Project, layouts: Layouts) -> set[str]:
    """The files scaffold writes once for the user: the channels' events files."""
    return {path for layout in layouts for path in users_files(project, layout)}


def _ownership(path: str, created_once: set[str]) -> Ownership:
    return Ownership.CREATED_ONCE if path in created_once else Ownership.GENERATED


def _package_inits(
    project: Project, layouts: Layouts, recorded_layouts: Layouts, desired: dict[str, Desired]
) -> dict[str, Desired]:
    """The `__init__.py` files the channels need; those only removed channels needed go too, if
    still empty and the deletions empty their package."""
    needed = {path for layout in layouts for path in layout.package_inits}
    inits = {path: Desired("", Ownership.CREATED_ONCE) for path in needed}
    deleted = {path for path, want in desired.items() if want.text is None}
    unneeded = {path for layout in recorded_layouts for path in layout.package_inits} - needed
    for path in sorted(unneeded, key=lambda path: -path.count("/")):  # inner packages first
        init = project.root / path
        empty = init.is_file() and not init.read_text(encoding="utf-8")
        if empty and _files_under(project.root, init.parent) <= deleted | {path}:
            inits[path] = Desired(None, Ownership.CREATED_ONCE, baseline="")
            deleted.add(path)
    return inits


def _files_under(root: Path, folder: Path) -> set[str]:
    """The files below `folder`, relative to `root`, but for Python's bytecode caches."""
    return {
        path.relative_to(root).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _pyproject(project: Project, *, add_packages: bool) -> Desired:
    """`pyproject.toml` with the project's records, and the packages the generated code needs:
    those it lists too low raised, and with `add_packages` those it lacks added."""
    from scaffold.manifest import edit_pyproject

    text = project.pyproject.read_text(encoding="utf-8")
    return Desired(edit_pyproject(text, project, add_packages=add_packages), Ownership.EDITED)


def _wired_app(project: Project, app_path: str, wanted: list[Router], removed: list[Router]) -> str:
    """The app module with the `wanted` routers wired and the `removed` ones unwired."""
    source_file = project.root / app_path
    if not source_file.is_file():
        raise BadInput(
            f"the app module {project.app_module} ({app_path}) does not exist; set [tool.scaffold]"
            " app to your FastAPI application or to its factory, as module:name"
        )
    source = source_file.read_text(encoding="utf-8")
    if not removed and _visibly_wired(source, project.app_variable, wanted):
        return source
    from scaffold.wiring import unwire_routers, wire_routers

    package = app_package(project)
    if removed:
        source = unwire_routers(
            source, project.app_variable, removed, filename=app_path, package=package
        )
    return wire_routers(
        source,
        project.app_variable,
        wanted,
        filename=app_path,
        package=package,
        first_party=project.package.split(".")[0],
    )


def _visibly_wired(source: str, app_variable: str, wanted: list[Router]) -> bool:
    """Whether `source` parses and holds, line for line, the imports and include_router calls
    that wiring would add: then it is wired, and libcst need not look.

    The calls are at the top of the module, or of the body of the factory `app_variable`, on the
    name it returns.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # libcst says what is wrong
        return False
    lines = source.split("\n")
    scope, app = f"\n{source}\n", app_variable
    factory = next(
        (
            statement
            for statement in tree.body
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
            and statement.name == app_variable
        ),
        None,
    )
    if factory is not None:
        returned = factory.body[-1]
        if not (isinstance(returned, ast.Return) and isinstance(returned.value, ast.Name)):
            return False
        line = lines[returned.lineno - 1]
        app = f"{line[: len(line) - len(line.lstrip())]}{returned.value.id}"
        scope = "\n".join(["", *lines[factory.lineno - 1 : factory.end_lineno], ""])
    return all(
        f"\n{from_import(router.module, router.name, router.alias)}\n" in f"\n{source}\n"
        and f"\n{app}.include_router({router.alias})\n" in scope
        for router in wanted
    )
