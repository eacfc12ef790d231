"""`scaffold asyncapi` writes the AsyncAPI document of a project's channels, as its app serves it:
the project's interpreter imports the app, scaffold never does. The document of every golden
case validates with the AsyncAPI project's own parser; an app that cannot be documented is a
clear error, and nothing is written."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi_pg_sse.openapi import ITEM_SCHEMA

from tests.golden_cases import CASES, GOLDEN, generate
from tests.helpers import (
    REPO,
    app_openapi,
    asyncapi_errors,
    contains,
    copy_example,
    run_scaffold,
)


def _list_routes(project: Path) -> dict[str, str]:
    """Each recorded channel's route, by its channel name, as `scaffold list --json` says."""
    listed = run_scaffold("list", "--json", cwd=project)
    assert listed.exit_code == 0, listed.stderr
    channels = json.loads(listed.stdout)["channels"]
    return {channel["channel_name"]: channel["route"] for channel in channels}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_asyncapi_document_of_every_golden_case_validates(tmp_path: Path, case: str) -> None:
    project = generate(case, tmp_path / "shop")
    written = run_scaffold("asyncapi", "--output", "asyncapi.json", cwd=project)
    assert written.exit_code == 0, written.stderr
    channels = len(CASES[case])
    assert written.stdout == (
        f"Wrote the AsyncAPI document of {channels} channel{'' if channels == 1 else 's'}"
        " to asyncapi.json.\n"
    )
    assert asyncapi_errors(project / "asyncapi.json") == ""
    document = json.loads((project / "asyncapi.json").read_text(encoding="utf-8"))
    addresses = {key: channel["address"] for key, channel in document["channels"].items()}
    assert addresses == _list_routes(project)


def test_a_message_payload_is_the_openapi_content_schema_of_its_event() -> None:
    """Printed to stdout without --output; the golden project is only read."""
    project = GOLDEN / "second-channel"
    printed = run_scaffold("asyncapi", "--project", str(project), cwd=project)
    assert printed.exit_code == 0, printed.stderr
    document = json.loads(printed.stdout)
    openapi = app_openapi(project)
    for channel in document["channels"].values():
        operation = openapi["paths"][channel["address"]]["get"]
        stream = operation["responses"]["200"]["content"]["text/event-stream"][ITEM_SCHEMA]
        payloads = {
            event["properties"]["event"]["const"]: event["properties"]["data"]["contentSchema"]
            for event in stream["oneOf"]
        }
        declared = {m["name"]: m["payload"] for m in channel["messages"].values() if "name" in m}
        assert declared, channel["address"]
        for event_type, payload in declared.items():
            assert payload == payloads[event_type], event_type


def test_a_jwt_channel_accepts_the_bearer_header_and_the_cookie(tmp_path: Path) -> None:
    """As the runtime's settings say by default: the query token is off."""
    output = tmp_path / "asyncapi.json"
    project = GOLDEN / "stock-in-inventory"
    written = run_scaffold(
        "asyncapi", "--output", str(output), "--project", str(project), cwd=tmp_path
    )
    assert written.exit_code == 0, written.stderr
    document = json.loads(output.read_text(encoding="utf-8"))
    [operation] = document["operations"].values()
    assert operation["security"] == [
        {"$ref": "#/components/securitySchemes/bearerToken"},
        {"$ref": "#/components/securitySchemes/tokenCookie"},
    ]
    schemes = document["components"]["securitySchemes"]
    assert (schemes["bearerToken"]["type"], schemes["bearerToken"]["scheme"]) == ("http", "bearer")
    assert (schemes["tokenCookie"]["type"], schemes["tokenCookie"]["in"]) == (
        "httpApiKey",
        "cookie",
    )


def test_a_src_layout_and_an_app_factory_are_documented(tmp_path: Path) -> None:
    project = generate("stock-in-inventory", tmp_path / "shop")
    (project / "src").mkdir()
    (project / "shop").rename(project / "src" / "shop")
    main = project / "src" / "shop" / "main.py"
    main.write_text(main.read_text() + "\n\ndef create_app() -> FastAPI:\n    return app\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"shop.main:app"', '"shop.main:create_app"'))
    printed = run_scaffold("asyncapi", cwd=project)
    assert printed.exit_code == 0, printed.stderr
    document = json.loads(printed.stdout)
    assert [c["address"] for c in document["channels"].values()] == [
        "/inventory/events/stock/stream"
    ]


@pytest.mark.parametrize(
    ("last_line", "reason"),
    [
        ('raise RuntimeError("SHOP_CONFIG is not set")', "RuntimeError: SHOP_CONFIG is not set"),
        ("raise SystemExit(0)", "it exited (SystemExit: 0) as it was imported or built"),
    ],
    ids=["raises", "exits"],
)
def test_an_app_that_fails_to_import_is_an_error_and_nothing_is_written(
    tmp_path: Path, last_line: str, reason: str
) -> None:
    project = copy_example(tmp_path / "shop")
    main = project / "shop" / "main.py"
    main.write_text(f"{main.read_text()}\n{last_line}\n")
    output = project / "asyncapi.json"
    output.write_text("the previous document")
    written = run_scaffold("asyncapi", "--output", "asyncapi.json", cwd=project)
    assert written.exit_code == 2
    assert written.stderr.startswith(
        f"error: no AsyncAPI document of shop.main:app (run with {sys.executable}): cannot load"
        f" the app shop.main:app: {reason}"
    ), written.stderr
    assert output.read_text() == "the previous document"
    assert not [path for path in project.iterdir() if path.name.startswith(".asyncapi.json")]


def test_a_runtime_that_exits_without_writing_the_document_is_an_error(tmp_path: Path) -> None:
    """Whatever its exit status: here 0, as an older runtime's when the app module exits."""
    project = copy_example(tmp_path / "shop")
    silent = tmp_path / "silent-python"
    silent.write_text("#!/bin/sh\nexit 0\n")
    silent.chmod(0o755)
    output = project / "asyncapi.json"
    output.write_text("the previous document")
    written = run_scaffold(
        "asyncapi", "--python", str(silent), "--output", str(output), cwd=project
    )
    assert (written.exit_code, written.stderr) == (
        2,
        f"error: no AsyncAPI document of shop.main:app (run with {silent}): the runtime exited"
        " without writing it; does the app's module exit (sys.exit) as it is imported?\n",
    )
    assert output.read_text() == "the previous document"


def test_an_output_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    written = run_scaffold("asyncapi", "--output", "missing/asyncapi.json", cwd=project)
    assert (written.exit_code, written.stderr) == (
        2,
        "error: cannot write missing/asyncapi.json: No such file or directory\n",
    )


def test_the_projects_virtualenv_runs_it_unless_another_interpreter_is_named(
    tmp_path: Path,
) -> None:
    """A `.venv` without the runtime: a clear error naming its interpreter; `--python` names
    one that has it."""
    project = copy_example(tmp_path / "shop")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", project / ".venv"], check=True)
    venv_python = project / ".venv" / "bin" / "python"
    refused = run_scaffold("asyncapi", "--output", "asyncapi.json", cwd=project)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: fastapi-pg-sse is not installed for {venv_python}: install the project's"
        " dependencies there, or name the project's Python interpreter with --python\n"
    )
    assert not (project / "asyncapi.json").exists()
    named = run_scaffold("asyncapi", "--python", sys.executable, cwd=project)
    assert named.exit_code == 0, named.stderr
    assert json.loads(named.stdout)["channels"] == {}, "the example has no channel yet"


def test_an_interpreter_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    missing = tmp_path / "no-python"
    refused = run_scaffold("asyncapi", "--python", str(missing), "--output", "x.json", cwd=project)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: cannot run {missing}: No such file or directory; name the project's Python"
        " interpreter with --python\n"
    )
    assert not (project / "x.json").exists()


def test_the_readme_example_writes_the_document_the_readme_shows(tmp_path: Path) -> None:
    """The README's "AsyncAPI document" section: its console block's commands, run in the example
    shop, print what it shows, and the document holds the excerpt of its json block."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.split(r"\n#{2,3} ", readme.split("\n### AsyncAPI document\n", 1)[1], maxsplit=1)[0]
    console, shown = (
        re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
        for language in ("console", "json")
    )
    assert console is not None and shown is not None, "the section has a console and a json block"
    *commands, printed = re.split(r"^\$ (.*)\n", console.group(1), flags=re.MULTILINE)[1:]
    project = copy_example(tmp_path / "shop")
    for command in commands[::2]:
        program, *arguments = shlex.split(command)
        assert program == "scaffold"
        result = run_scaffold(*arguments, cwd=project)
        assert result.exit_code == 0, result.stderr
    assert result.stdout == printed
    document = json.loads((project / "asyncapi.json").read_text(encoding="utf-8"))
    assert contains(document, json.loads(shown.group(1)))
