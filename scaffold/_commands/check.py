"""`scaffold check`: is every generated file and wiring of the recorded channels as rendered?

It reads the plan `scaffold sync` would carry out, without writing anything.
"""

from dataclasses import dataclass
from pathlib import Path

from scaffold.pipeline import app_package, low_requirements, router_wirings, sync_plan
from scaffold.plan import Action, FileChange, Ownership
from scaffold.project import Project, load_project


@dataclass(frozen=True)
class Finding:
    path: str
    status: str
    """`missing`, `outdated` (written by an earlier scaffold: `sync` updates it), `modified`
    (edited by hand: only `sync --force` overwrites it), `missing wiring`, or `too low` (a
    requirement of pyproject.toml below what the generated code needs: `sync` raises it)."""
    diff: str | None
    """What `scaffold sync` would change, as a unified diff; None for a missing file."""
    routers: tuple[str, ...] = ()
    """For `missing wiring`: the routers whose import or include_router line is gone."""
    requirements: tuple[str, ...] = ()
    """For `too low`: the requirements of pyproject.toml that allow too old a version."""


@dataclass(frozen=True)
class CheckReport:
    root: Path
    checked: int
    """How many files were compared."""
    findings: tuple[Finding, ...]

    @property
    def in_sync(self) -> bool:
        return not self.findings

    @property
    def needs_force(self) -> bool:
        """Whether generated files were edited by hand, which only `sync --force` overwrites."""
        return any(finding.status == "modified" for finding in self.findings)

    def as_json(self) -> dict[str, object]:
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
                    "diff": f.diff,
                }
                for f in self.findings
            ],
        }


def check(project_dir: Path) -> CheckReport:
    project = load_project(project_dir)
    plan = sync_plan(project)
    findings = tuple(_finding(project, change) for change in plan.pending)
    return CheckReport(project.root, len(plan.changes), findings)


def _finding(project: Project, change: FileChange) -> Finding:
    if change.action is Action.CREATE:
        return Finding(change.path, "missing", None)
    if change.action is Action.CONFLICT:
        return Finding(change.path, "modified", change.diff())
    if change.path == project.pyproject.name:
        low = tuple(str(requirement) for requirement in low_requirements(project))
        return Finding(change.path, "too low", change.diff(), requirements=low)
    if change.ownership is Ownership.EDITED:
        return Finding(change.path, "missing wiring", change.diff(), _unwired(project, change))
    return Finding(change.path, "outdated", change.diff())


def _unwired(project: Project, change: FileChange) -> tuple[str, ...]:
    """The routers the app module (the plan's other edited file) no longer imports or mounts."""
    from scaffold.wiring import missing_wirings

    missing = missing_wirings(
        change.old or "",
        project.app_variable,
        router_wirings(project),
        filename=change.path,
        package=app_package(project),
    )
    return tuple(wiring.alias for wiring in missing)
