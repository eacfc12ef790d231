"""`scaffold sync`: write back what `scaffold check` reports, through the same plan."""

from dataclasses import dataclass
from pathlib import Path

from scaffold.apply import apply_plan
from scaffold.pipeline import migrations_in_order, sync_plan, up_to_date
from scaffold.plan import Plan
from scaffold.project import load_project


@dataclass(frozen=True)
class SyncResult:
    plan: Plan
    migrations: tuple[str, ...]
    """Every migration scaffold renders for the project, in the order they apply: what the plan
    creates of them (a newer schema of the runtime's, say) is what to apply next."""


def sync(project_dir: Path, *, dry_run: bool = False, force: bool = False) -> SyncResult:
    """Regenerate the recorded channels' files and wiring, and write the migrations that bring
    the project up to the runtime's schema; return the plan carried out."""
    recorded = load_project(project_dir)
    project, _ = up_to_date(recorded)
    plan = sync_plan(recorded, project)
    if force:
        plan = plan.forced()
    if not dry_run:
        apply_plan(plan, last="pyproject.toml")
    return SyncResult(plan, tuple(migrations_in_order(project)))
