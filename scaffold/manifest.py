"""Edits of the target's `pyproject.toml` with tomlkit, keeping the rest of it byte for byte.

It adds the `[tool.scaffold]` table, records the channels in `[[tool.scaffold.channels]]`, and
adds the packages the generated code and its tests import, when the project does not list them
yet. Packages stay when channels go: the project may have come to use them too.
"""

import re
from collections.abc import Mapping, Sequence

import tomlkit
from tomlkit.items import AoT, Array, Table

from scaffold import __version__
from scaffold.project import ChannelRecord, scaffold_table


def _compatible_range(version: str) -> str:
    """`>=X.Y,<X+1`: the runtime releases that generated code of this version works with."""
    major, minor = version.split(".")[:2]
    return f">={major}.{minor},<{int(major) + 1}"


RUNTIME = "fastapi-pg-sse"
RUNTIME_RANGE = _compatible_range(__version__)
RUNTIME_REQUIREMENTS = ("fastapi>=0.137.2", f"{RUNTIME}{RUNTIME_RANGE}")
TEST_REQUIREMENTS = (f"{RUNTIME}[testing]{RUNTIME_RANGE}", "httpx>=0.27", "pytest>=8")
TEST_EXTRA = "test"


def edit_pyproject(text: str, channels: Sequence[ChannelRecord]) -> str:
    """`text` with exactly `channels` recorded and every required package listed."""
    document = tomlkit.parse(text)
    _record_channels(document["tool"]["scaffold"], channels)
    project = document.setdefault("project", _new_table({"dependencies": tomlkit.array()}))
    _require(project.setdefault("dependencies", tomlkit.array()), RUNTIME_REQUIREMENTS)
    extras = project.setdefault("optional-dependencies", _new_table({TEST_EXTRA: tomlkit.array()}))
    _require(extras.setdefault(TEST_EXTRA, tomlkit.array()), TEST_REQUIREMENTS)
    return _dumps(document, text)


def add_scaffold_table(text: str, settings: Mapping[str, str]) -> str:
    """`text` with a `[tool.scaffold]` table of `settings`, after its other `[tool.*]` tables."""
    document = tomlkit.parse(text)
    table = tomlkit.parse(scaffold_table(settings))["tool"]["scaffold"]
    if "tool" not in document:
        document.append("tool", tomlkit.table(is_super_table=True))
    document["tool"].append("scaffold", table)
    return _dumps(document, text)


def _dumps(document: tomlkit.TOMLDocument, text: str) -> str:
    edited = tomlkit.dumps(document)
    # New tables end with a blank line to separate them from what follows; not at the very end.
    return edited.rstrip("\n") + "\n" if text.endswith("\n") else edited.rstrip("\n")


def _record_channels(table: Table, channels: Sequence[ChannelRecord]) -> None:
    wanted = [record.as_toml() for record in channels]
    existing = table.get("channels")
    if isinstance(existing, AoT) and [dict(entry) for entry in existing] == wanted:
        return
    if not wanted:
        table.pop("channels", None)
        return
    entries = tomlkit.aot()
    for values in wanted:
        entries.append(_new_table(values, blank_line_after=values is wanted[-1]))
    table["channels"] = entries


def _new_table(values: Mapping[str, object], *, blank_line_after: bool = True) -> Table:
    """A table of `values`, followed by a blank line as a person would write it."""
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, value)
    if blank_line_after:
        table.add(tomlkit.nl())
    return table


def _require(requirements: Array, wanted: Sequence[str]) -> None:
    """Append what is missing, one per line unless the user keeps the array on one line."""
    present = {_distribution(str(requirement)) for requirement in requirements}
    missing = [requirement for requirement in wanted if _distribution(requirement) not in present]
    if not missing:
        return
    one_line = bool(requirements) and "\n" not in requirements.as_string()
    requirements.extend(missing)
    requirements.multiline(not one_line)


def _distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return re.sub(r"[-_.]+", "-", name.group(0)).lower() if name else requirement
