"""`scaffold check`: is every generated file and wiring of the recorded channels as rendered?

It reads the plan `scaffold sync` would carry out, without writing anything. With `--against
REF`, it compares the channels' events with those at a git commit too (`scaffold.against`); only
`--accept` writes, the breaks it accepts.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scaffold.layout import migration_path
from scaffold.pipeline import app_package, low_requirements, project_routers, sync_plan, up_to_date
from scaffold.plan import Action, FileChange, Ownership
from scaffold.project import Project, load_project

if TYPE_CHECKING:
    from scaffold.against import Comparison


@dataclass(frozen=True)
class Finding:
    path: str
    status: str
    """`missing`, `outdated` (written by an earlier scaffold: `sync` updates it), `modified`
    (edited by hand: only `sync --force` overwrites it), `missing wiring`, `too low` (a
    requirement of pyproject.toml below what the generated code needs: `sync` raises it),
    `new schema` (a migration to a version of the runtime's schema the project's migrations
    lack: `sync` writes it), `upgrade` (one that upgrades a channel made before the runtime owned
    its schema), `records` (scaffold's records in pyproject.toml, which `sync` updates), `old
    wiring` (routers the app module includes that the registry includes now: `sync` removes
    them), or `unused` (a file scaffold wrote once, unedited, that no channel uses any more:
    `sync` deletes it)."""
    diff: str | None
    """What `scaffold sync` would change, as a unified diff; None for a missing file."""
    routers: tuple[str, ...] = ()
    """For `missing wiring`: the routers whose import or include_router line is gone; for `old
    wiring`, those the app module should include no more."""
    requirements: tuple[str, ...] = ()
    """For `too low`: the requirements of pyproject.toml that allow too old a version."""
    detail: str | None = None
    """For `new schema` and `upgrade`: what the migration does."""


@dataclass(frozen=True)
class CheckReport:
    root: Path
    checked: int
    """How many files were compared."""
    findings: tuple[Finding, ...]
    against: "Comparison | None" = None
    """With `--against`: the breaking changes of the channels' events since that commit."""

    @property
    def breaking(self) -> bool:
        """Whether the channels' events changed in a way no accepted break lets through."""
        return self.against is not None and bool(self.against.breaks)

    @property
    def in_sync(self) -> bool:
        return not self.findings

    @property
    def needs_force(self) -> bool:
        """Whether generated files were edited by hand, which only `sync --force` overwrites."""
        return any(finding.status == "modified" for finding in self.findings)

    def as_json(self) -> dict[str, object]:
        against = {} if self.against is None else {"against": self.against.as_json()}
        return {
            "project": str(self.root),
            "in_sync": self.in_sync,
            "checked": self.checked,
            "findings": [
                {
                    "path": f.path,
                    "status": f.status,
                    "routers": list(f.routers),
                    "requirements": list(f.requirements),
                    "detail": f.detail,
                    "diff": f.diff,
                }
                for f in self.findings
            ],
            **against,
        }


def check(project_dir: Path, *, against: str | None = None, accept: bool = False) -> CheckReport:
    """The drift of the project; with `against`, a git ref, the breaking changes of its
    channels' events since then too, all recorded as accepted with `accept`."""
    recorded = load_project(project_dir)
    project, _ = up_to_date(recorded)
    plan = sync_plan(recorded, project)
    new_migrations = _new_migrations(recorded, project)
    findings = tuple(_finding(recorded, project, change, new_migrations) for change in plan.pending)
    comparison = None
    if against is not None:
        from scaffold.against import compare_with

        comparison = compare_with(recorded, against, accept=accept)
    return CheckReport(recorded.root, len(plan.changes), findings, comparison)


def _new_migrations(recorded: Project, project: Project) -> dict[str, tuple[str, str]]:
    """The migrations `sync` writes to bring `recorded` up to date with the runtime's schema
    (`project`), by path: their status and what they do."""
    new: dict[str, tuple[str, str]] = {}
    for schema in project.schema[len(recorded.schema) :]:
        path = migration_path(project, schema.migration)
        new[path] = ("new schema", f"fastapi-pg-sse's schema {schema.version}")
    for record in project.channels:
        if record.upgrade is not None and record not in recorded.channels:
            path = migration_path(project, record.upgrade)
            made = "made before fastapi-pg-sse 0.5"
            new[path] = ("upgrade", f"{record.name} in {record.module}, {made}")
    return new


def _finding(
    recorded: Project,
    project: Project,
    change: FileChange,
    new_migrations: dict[str, tuple[str, str]],
) -> Finding:
    if change.path in new_migrations:
        status, detail = new_migrations[change.path]
        return Finding(change.path, status, None, detail=detail)
    if change.action is Action.CREATE:
        return Finding(change.path, "missing", None)
    if change.action is Action.CONFLICT:
        return Finding(change.path, "modified", change.diff())
    if change.path == recorded.pyproject.name:
        low = tuple(requirement.shortfall for requirement in low_requirements(recorded))
        status = "too low" if low else "records"
        return Finding(change.path, status, change.diff(), requirements=low)
    if change.ownership is Ownership.EDITED:
        if unwired := _unwired(project, change):
            return Finding(change.path, "missing wiring", change.diff(), unwired)
        wanted = project_routers(project)
        gone = tuple(r.alias for r in project_routers(recorded) if r not in wanted)
        return Finding(change.path, "old wiring", change.diff(), gone)
    if change.action is Action.DELETE and change.ownership is Ownership.CREATED_ONCE:
        return Finding(change.path, "unused", change.diff())
    return Finding(change.path, "outdated", change.diff())


def _unwired(project: Project, change: FileChange) -> tuple[str, ...]:
    """The routers the app module (the plan's other edited file) no longer imports or mounts."""
    from scaffold.wiring import missing_wirings

    missing = missing_wirings(
        change.old or "",
        project.app_variable,
        project_routers(project),
        filename=change.path,
        package=app_package(project),
    )
    return tuple(wiring.alias for wiring in missing)
