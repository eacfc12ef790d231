"""render -> plan: the desired state of a project, as one set of files, for every command."""

from scaffold.errors import BadInput
from scaffold.layout import KERNEL_ROUTER, channel_layout, kernel_module, module_path
from scaffold.manifest import edit_pyproject
from scaffold.plan import Desired, Ownership, Plan, make_plan
from scaffold.project import Project
from scaffold.render import render_channel, render_kernel
from scaffold.wiring import RouterWiring, wire_routers


def generated_files(project: Project) -> dict[str, str]:
    """Every file scaffold generates for the project's recorded channels."""
    files = render_kernel(project)
    for record in project.channels:
        files |= render_channel(project, channel_layout(project, record))
    return files


def router_wirings(project: Project) -> list[RouterWiring]:
    kernel = RouterWiring(kernel_module(project, "kernel"), KERNEL_ROUTER, KERNEL_ROUTER)
    channels = [
        RouterWiring(layout.controller_module, "router", layout.router_alias)
        for layout in (channel_layout(project, record) for record in project.channels)
    ]
    return [kernel, *channels]


def desired_state(project: Project, *, recorded: Project) -> dict[str, Desired]:
    """What the disk should hold once `project`'s channels exist.

    `recorded` is the project as its manifest describes it before the command: a generated file
    still equal to what it renders may be updated, any other difference is a conflict.
    """
    baseline = generated_files(recorded) if recorded.channels else {}
    desired = {
        path: Desired(text, Ownership.GENERATED, baseline.get(path))
        for path, text in generated_files(project).items()
    }
    for record in project.channels:
        for path in channel_layout(project, record).package_inits:
            desired[path] = Desired("", Ownership.CREATED_ONCE)
    app_path = module_path(project, project.app_module)
    desired[app_path] = Desired(_wired_app(project, app_path), Ownership.EDITED)
    pyproject = project.pyproject.read_text(encoding="utf-8")
    desired["pyproject.toml"] = Desired(
        edit_pyproject(pyproject, project.channels), Ownership.EDITED
    )
    return desired


def plan_project(project: Project, *, recorded: Project) -> Plan:
    return make_plan(project.root, desired_state(project, recorded=recorded))


def _wired_app(project: Project, app_path: str) -> str:
    source_file = project.root / app_path
    if not source_file.is_file():
        raise BadInput(
            f"the app module {project.app_module} ({app_path}) does not exist; set [tool.scaffold]"
            " app to your FastAPI application as module:variable"
        )
    return wire_routers(
        source_file.read_text(encoding="utf-8"),
        project.app_variable,
        router_wirings(project),
        filename=app_path,
        first_party=project.package.split(".")[0],
    )
