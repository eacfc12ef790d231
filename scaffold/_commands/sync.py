"""`scaffold sync`: write back what `scaffold check` reports, through the same plan."""

from pathlib import Path

from scaffold.apply import apply_plan
from scaffold.pipeline import sync_plan
from scaffold.plan import Plan
from scaffold.project import load_project


def sync(project_dir: Path, *, dry_run: bool = False, force: bool = False) -> Plan:
    """Regenerate the recorded channels' files and wiring; return the plan carried out."""
    plan = sync_plan(load_project(project_dir))
    if force:
        plan = plan.forced()
    if dry_run:
        return plan
    apply_plan(plan)
    return plan
