"""`scaffold check --against REF`: breaking changes to the channels' events since a git commit.

The rules are proved on small events files (`breaks`); the command line in this process on a
generated copy of `examples/shop` committed to a real git repository, in a folder of it.
"""

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from scaffold import git as scaffold_git
from scaffold._cli import app
from scaffold.breaking import BOTH, Break, event_breaks
from scaffold.errors import BadInput
from scaffold.typescript import read_channel_events
from tests.helpers import REPO, heavy_modules_loaded, run_scaffold
from tests.test_check import generated_copy

HEADER = """from typing import Annotated, Any, ClassVar, Literal, Optional

from fastapi_pg_sse import ChannelEvent
from pydantic import ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

"""
STOCK = "shop/modules/inventory/services/stock_events.py"
STOCK_LEVEL = "shop/modules/warehouse_ops/services/stock_level_events.py"


def events(body: str, union: str = "StockUpdated") -> str:
    return f"{HEADER}{body}\n\nStockEvent = {union}\n"


def event_class(*fields: str, event_type: str = "stock_updated", config: str = "") -> str:
    """`StockUpdated` with `fields` (its body's lines), at line 7 of the file `events` makes."""
    body = "\n".join(f"    {field}" for field in (config, *fields) if field)
    head = f'class StockUpdated(ChannelEvent):\n    event_type: ClassVar[str] = "{event_type}"'
    return f"{head}\n{body}\n"


def updated(*fields: str, event_type: str = "stock_updated", config: str = "") -> str:
    """An events file of one event, `StockUpdated`, with `fields`: the first on line 9."""
    return events(event_class(*fields, event_type=event_type, config=config))


REMOVED = '\n\nclass StockRemoved(ChannelEvent):\n    event_type: ClassVar[str] = "stock_removed"\n'


def breaks(old: str, new: str) -> list[Break]:
    return event_breaks(
        "inventory_stock",
        read_channel_events(old, "old.py", "StockEvent"),
        "old.py",
        read_channel_events(new, "new.py", "StockEvent"),
        "new.py",
    )


def changes(old: str, new: str) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(b.change, b.field, b.old, b.new) for b in breaks(old, new)]


# The rules, on events files.


def test_a_renamed_field_breaks_at_its_new_line() -> None:
    (found,) = breaks(updated("id: int"), updated("stock_id: int"))
    assert (found.change, found.field, found.old, found.new) == (
        "field renamed", "id", "id", "stock_id",
    )  # fmt: skip
    assert found.location("HEAD") == "new.py:9"
    assert "field 'id' of event 'stock_updated'" in found.describe()


def test_a_removed_field_breaks_at_its_line_at_the_ref() -> None:
    (found,) = breaks(updated("id: int", "name: str"), updated("id: int"))
    assert (found.change, found.field, found.old) == ("field removed", "name", "str")
    assert found.readers == ("old readers",)
    assert found.location("HEAD") == "old.py:10 (at HEAD)"


def test_an_added_field_with_a_default_and_a_new_event_pass() -> None:
    fields = ("id: int", "note: str | None = None", "tags: list[str] = Field(default_factory=list)")
    new = events(event_class(*fields) + REMOVED, "StockUpdated | StockRemoved")
    assert breaks(updated("id: int"), new) == []


@pytest.mark.parametrize(
    ("field", "type"),
    [
        ("note: str", "str"),
        ("note: str = Field()", "str"),
        ("note: str = Field(...)", "str"),
        ("note: str | None", "str | None"),
    ],
)
def test_an_added_field_without_a_default_breaks(field: str, type: str) -> None:
    assert changes(updated("id: int"), updated("id: int", field)) == [
        ("required field added", "note", None, type)
    ]


@pytest.mark.parametrize(
    "optional",
    [
        "note: str = ''",
        "note: str = Field('')",
        "note: str = Field(default='')",
        "note: Annotated[str, Field(default='')]",
    ],
)
def test_an_optional_field_made_required_breaks(optional: str) -> None:
    assert changes(updated("id: int", optional), updated("id: int", "note: str")) == [
        ("made required", "note", None, None)
    ]


def test_the_wire_name_is_what_counts_aliases_followed() -> None:
    aliased = updated('stock_id: int = Field(serialization_alias="id")')
    assert breaks(updated("id: int"), aliased) == []
    assert changes(updated("id: int"), updated('id: int = Field(alias="stockId")')) == [
        ("field renamed", "id", "id", "stockId")
    ]
    camel = "model_config = ConfigDict(alias_generator=to_camel)"
    assert changes(updated("stock_id: int"), updated("stock_id: int", config=camel)) == [
        ("field renamed", "stock_id", "stock_id", "stockId")
    ]


@pytest.mark.parametrize(
    ("old", "new", "readers"),
    [
        ("int", "str", BOTH),
        ("str", "int", BOTH),
        ("bool", "int", BOTH),
        ("list[int]", "list[str]", BOTH),
        ("list[int]", "int", BOTH),
        ("dict[str, int]", "dict[str, str]", BOTH),
        ("tuple[int, int]", "tuple[int, str]", BOTH),
        ("Literal['a', 'b']", "Literal['a', 'c']", BOTH),
        # Wider: an old reader refuses what is new (pydantic's int refuses 1.5, or "x").
        ("int", "int | None", ("old readers",)),
        ("int", "Optional[int]", ("old readers",)),
        ("int", "float", ("old readers",)),
        ("list[int]", "list[float]", ("old readers",)),
        ("datetime", "str", ("old readers",)),
        ("date", "str", ("old readers",)),
        ("Literal['a']", "str", ("old readers",)),
        ("Literal['a']", "Literal['a', 'b']", ("old readers",)),
        ("Annotated[int, Field(ge=0)]", "int", ("old readers",)),
        ("int", "Any", ("old readers",)),
        # Narrower: a new reader refuses events stored before, replayed to it.
        ("int | None", "int", ("stored events",)),
        ("float", "int", ("stored events",)),
        ("str", "Literal['a', 'b']", ("stored events",)),
        ("Literal['a', 'b']", "Literal['a']", ("stored events",)),
        ("Any", "dict[str, int]", ("stored events",)),
        ("str", "datetime", ("stored events",)),
        ("int", "Annotated[int, Field(ge=0)]", ("stored events",)),
        ("list[int | None]", "list[int]", ("stored events",)),
        # A constraint changed: scaffold does not weigh one against another.
        ("int = Field(ge=0)", "int = Field(ge=1)", BOTH),
        ("Annotated[str, Field(max_length=3)]", "str = Field(max_length=4)", BOTH),
    ],
)
def test_a_type_change_breaks_the_readers_on_either_side_of_it(
    old: str, new: str, readers: tuple[str, ...]
) -> None:
    (found,) = breaks(updated(f"value: {old}"), updated(f"value: {new}"))
    assert (found.change, found.field, found.readers) == ("type changed", "value", readers)
    assert found.location("HEAD") == "new.py:9"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int", "int"),
        ("Optional[int]", "int | None"),
        ("None | int", "int | None"),
        ("List[int]", "list[int]"),
        ("dict", "dict[str, Any]"),
        ("Any", "JsonValue"),
        ("Literal['a', 'b']", "Literal['b', 'a']"),
        ("Annotated[int, Field(ge=0, description='old')]", "int = Field(0, ge=0)"),
        ("Money", "Money"),
    ],
)
def test_a_type_written_another_way_passes(old: str, new: str) -> None:
    assert breaks(updated(f"value: {old}"), updated(f"value: {new}")) == []


def test_a_type_the_file_does_not_show_is_compared_by_its_annotation() -> None:
    assert changes(updated("value: Money"), updated("value: str")) == [
        ("type changed", "value", "Money", "str")
    ]
    assert changes(updated("value: Money"), updated("value: money.Money")) == [
        ("type changed", "value", "Money", "money.Money")
    ]


def test_a_removed_event_breaks_at_its_class_at_the_ref() -> None:
    old = events(event_class("id: int") + REMOVED, "StockUpdated | StockRemoved")
    (found,) = breaks(old, updated("id: int"))
    assert (found.change, found.event) == ("event removed", "stock_removed")
    assert found.location("main") == "old.py:12 (at main)"


def test_a_changed_event_type_is_a_renamed_event() -> None:
    (found,) = breaks(updated("id: int"), updated("id: int", event_type="stock_changed"))
    assert (found.change, found.event, found.old, found.new) == (
        "event renamed", "stock_updated", "stock_updated", "stock_changed",
    )  # fmt: skip
    assert found.location("HEAD") == "new.py:7"


NESTED = """class {item}(ChannelEvent):
{fields}


class StockUpdated(ChannelEvent):
    event_type: ClassVar[str] = "stock_updated"
    item: {item}
    items: list[{item}] = []
    maybe: {item} | None = None
    children: list["{item}"] = []
"""


def nested(item: str, *fields: str) -> str:
    return events(NESTED.format(item=item, fields="\n".join(f"    {f}" for f in fields)))


def test_nested_models_are_compared_field_by_field_whatever_their_class() -> None:
    assert breaks(nested("Item", "qty: int"), nested("Line", "qty: int", "note: str = ''")) == []
    assert changes(nested("Item", "qty: int"), nested("Line", "qty: str")) == [
        ("type changed", "item.qty", "int", "str"),
        ("type changed", "items[].qty", "int", "str"),
        ("type changed", "maybe.qty", "int", "str"),
        ("type changed", "children[].qty", "int", "str"),
    ]


def test_a_union_of_models_is_shown_as_the_json_objects_the_wire_carries() -> None:
    item = "class Item(ChannelEvent):\n    qty: {qty}\n\n\n"
    models = item + "class Note(ChannelEvent):\n    text: str\n\n\n"
    field = "entry: Item | Note"
    old = events(models.format(qty="int") + event_class(field))
    new = events(models.format(qty="str") + event_class(field))
    assert changes(old, new) == [
        ("type changed", "entry", "{qty: int} | {text: str}", "{qty: str} | {text: str}")
    ]


def test_a_model_that_holds_itself_is_compared_once() -> None:
    tree = (
        'class Node(ChannelEvent):\n    event_type: ClassVar[str] = "node"\n'
        '    children: list["Node"] = []\n    {field}\n'
    )
    old = events(tree.format(field="name: str"), "Node")
    new = events(tree.format(field="name: int"), "Node")
    assert changes(old, new) == [("type changed", "name", "str", "int")]
    assert breaks(old, old) == []


def test_inherited_fields_count_and_a_base_change_breaks_every_event_that_has_it() -> None:
    row = "class Row(ChannelEvent):\n    id: int\n    {field}\n\n\n"
    event = 'class {name}(Row):\n    event_type: ClassVar[str] = "{type}"\n\n\n'
    body = event.format(name="StockCreated", type="stock_created") + event.format(
        name="StockUpdated", type="stock_updated"
    )
    union = "StockCreated | StockUpdated"
    old = events(row.format(field="stock: int") + body, union)
    new = events(row.format(field="stock: str") + body, union)
    assert [(b.event, b.change, b.field, b.line) for b in breaks(old, new)] == [
        ("stock_created", "type changed", "stock", 9),
        ("stock_updated", "type changed", "stock", 9),
    ]


# The command line, on a project committed to git.


def git(repository: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    completed = subprocess.run(
        ["git", *identity, *arguments], cwd=repository, capture_output=True, text=True, check=True
    )
    return completed.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A generated copy of `examples/shop` (two channels), in a folder of a git repository,
    committed."""
    repository = tmp_path / "repository"
    project = generated_copy("second-channel", repository / "services" / "shop")
    git(repository, "init", "--quiet")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "-m", "shop")
    return project


def scaffold(*arguments: str, project: Path) -> Result:
    return CliRunner().invoke(app, [*arguments, "--project", str(project)])


def edit(project: Path, path: str, old: str, new: str) -> None:
    file = project / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


def test_a_renamed_field_fails_naming_the_field_and_its_file_and_line(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    stock_id: int\n")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 1, result.output
    assert (
        f"      breaking  {STOCK}:15: field 'id' of event 'stock_updated' of channel"
        " inventory_stock renamed to 'stock_id'"
    ) in result.stdout
    assert readme_block("      breaking  ").splitlines()[0] in result.stdout.splitlines()
    assert "scaffold check --against HEAD --accept" in result.stdout
    assert result.stdout.startswith("In sync: ")  # the normal check ran too


def test_an_added_optional_field_passes(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    id: int\n    note: str | None = None\n")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 0, result.output
    assert "No breaking change to the events of 2 channels since HEAD (" in result.stdout


def test_the_json_report_lists_the_breaks(project: Path) -> None:
    edit(project, STOCK_LEVEL, "    stock: int\n", "    stock: int | None\n")
    result = scaffold("check", "--against", "HEAD", "--json", project=project)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["in_sync"] is True and report["fix"] is None
    against = report["against"]
    assert against["ref"] == "HEAD" and against["channels"] == 2
    assert against["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert [
        (b["event"], b["field"], b["old"], b["new"], b["location"]) for b in against["breaks"]
    ] == [
        (event, "stock", "int", "int | None", f"{STOCK_LEVEL}:16")
        for event in ("stock_level_created", "stock_level_updated", "stock_level_deleted")
    ]
    assert {tuple(b["readers"]) for b in against["breaks"]} == {("old readers",)}


def test_a_removed_event_is_named_at_its_line_at_the_ref(project: Path) -> None:
    edit(
        project,
        STOCK_LEVEL,
        "StockLevelEvent = StockLevelCreated | StockLevelUpdated | StockLevelDeleted",
        "StockLevelEvent = StockLevelCreated | StockLevelUpdated",
    )
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 1, result.output
    assert (
        f"{STOCK_LEVEL}:31 (at HEAD): event 'stock_level_deleted' of channel"
        " warehouse_ops_stock_level removed"
    ) in result.stdout


def test_a_removed_channel_breaks(project: Path) -> None:
    removed = scaffold("remove-sse-channel", "Stock", "in", "inventory", project=project)
    assert removed.exit_code == 0, removed.output
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 1, result.output
    assert (
        "pyproject.toml:42 (at HEAD): channel inventory_stock removed: its stream is gone"
        in result.stdout
    ), result.stdout
    lines = git(project, "show", "HEAD:./pyproject.toml").splitlines()
    assert lines[41] == "[[tool.scaffold.channels]]"


def test_a_channel_without_an_events_file_at_the_ref_has_nothing_to_break(
    project: Path,
) -> None:
    kept = (project / STOCK).read_text()
    git(project, "rm", "--quiet", STOCK)
    git(project, "commit", "--quiet", "-m", "a channel made before events were typed")
    (project / STOCK).write_text(kept.replace("    id: int\n", "    stock_id: int\n"))
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 0, result.output
    assert "No breaking change to the events of 2 channels since HEAD" in result.stdout


def test_a_missing_events_file_is_compared_as_scaffold_writes_it(project: Path) -> None:
    (project / STOCK).write_text((project / STOCK).read_text().replace("    id: int\n", ""))
    git(project, "commit", "--quiet", "--all", "-m", "an event without fields")
    (project / STOCK).unlink()  # scaffold writes it again, with its example field
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 1, result.output
    assert f"{STOCK}:15: field 'id' of event 'stock_updated'" in result.stdout
    assert "added without a default" in result.stdout


def test_a_break_accepted_on_purpose_passes_until_it_lands(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    stock_id: int\n")
    accepted = scaffold("check", "--against", "HEAD", "--accept", project=project)
    assert accepted.exit_code == 0, accepted.output
    assert "Accepted in pyproject.toml" in accepted.stdout
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["scaffold"]
    assert table["accepted_breaks"] == [
        {
            "channel": "inventory_stock",
            "change": "field renamed",
            "event": "stock_updated",
            "field": "id",
            "old": "id",
            "new": "stock_id",
        }
    ]

    again = scaffold("check", "--against", "HEAD", project=project)
    assert again.exit_code == 0, again.output
    assert f"      accepted  {STOCK}:15: field 'id'" in again.stdout
    assert scaffold("check", project=project).exit_code == 0  # the record is no drift

    git(project, "commit", "--quiet", "--all", "-m", "rename the stock's id")
    committed = scaffold("check", "--against", "HEAD", project=project)
    assert committed.exit_code == 0, committed.output
    assert (
        '   not matched  [[tool.scaffold.accepted_breaks]] channel = "inventory_stock",'
        ' change = "field renamed", event = "stock_updated", field = "id", old = "id",'
        ' new = "stock_id"\n'
    ) in committed.stdout
    assert "match no break against HEAD" in committed.stdout
    assert "--accept" not in committed.stdout  # which would not drop it anyway
    before = (project / "pyproject.toml").read_text()
    again = scaffold("check", "--against", "HEAD", "--accept", project=project)
    assert again.exit_code == 0, again.output
    assert (project / "pyproject.toml").read_text() == before  # still needed against main


def test_the_accepted_entry_the_hook_committed_still_passes_ci_against_the_target_branch(
    project: Path,
) -> None:
    target = git(project, "rev-parse", "--abbrev-ref", "HEAD").strip()
    git(project, "switch", "--quiet", "--create", "rename")
    edit(project, STOCK, "    id: int\n", "    stock_id: int\n")
    assert scaffold("check", "--against", "HEAD", "--accept", project=project).exit_code == 0
    git(project, "commit", "--quiet", "--all", "-m", "rename the stock's id, on purpose")
    assert scaffold("check", "--against", "HEAD", "--accept", project=project).exit_code == 0
    ci = scaffold("check", "--against", target, project=project)
    assert ci.exit_code == 0, ci.output
    assert f"      accepted  {STOCK}:15: field 'id'" in ci.stdout


def test_an_accepted_entry_keeps_its_reason_and_still_matches(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    stock_id: int\n")
    assert scaffold("check", "--against", "HEAD", "--accept", project=project).exit_code == 0
    reason = 'reason = "every client is redeployed with the change"\n'
    edit(project, "pyproject.toml", 'new = "stock_id"\n', f'new = "stock_id"\n{reason}')
    edit(project, STOCK, "    stock_id: int\n", "    stock_id: int\n    note: str\n")
    result = scaffold("check", "--against", "HEAD", "--accept", project=project)
    assert result.exit_code == 0, result.output
    assert "not matched" not in result.stdout
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["scaffold"]
    renamed, added = table["accepted_breaks"]
    assert renamed["reason"] == "every client is redeployed with the change"
    assert (renamed["change"], added["change"]) == ("field renamed", "required field added")
    documented = tomllib.loads(readme_block("[[tool.scaffold.accepted_breaks]]"))
    assert documented["tool"]["scaffold"]["accepted_breaks"] == [renamed]


def test_an_accepted_break_lets_no_other_through(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    stock_id: int\n")
    assert scaffold("check", "--against", "HEAD", "--accept", project=project).exit_code == 0
    edit(project, STOCK, "    stock_id: int\n", "    stock_id: str\n")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 1, result.output
    assert (
        f"      breaking  {STOCK}:15 (at HEAD): field 'id' of event 'stock_updated' of channel"
        " inventory_stock removed"
    ) in result.stdout
    assert "not matched" in result.stdout


def test_the_command_line_reads_against_without_typer(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    stock_id: int\n")
    result = run_scaffold("check", "--against", "HEAD", "--json", cwd=project)
    assert result.exit_code == 1, result.stderr
    assert json.loads(result.stdout)["against"]["breaks"][0]["field"] == "id"


def test_the_check_against_a_commit_loads_no_heavy_module(project: Path) -> None:
    """What the pre-commit hook runs on every commit stays as fast as the check alone."""
    assert heavy_modules_loaded(project, "check", "--against", "HEAD") == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--against", "no-such-branch"), "--against no-such-branch: git knows no such commit"),
        (("--accept",), "--accept records the breaking changes that --against REF finds"),
    ],
)
def test_bad_input_exits_2(project: Path, arguments: tuple[str, ...], message: str) -> None:
    result = scaffold("check", *arguments, project=project)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_an_accepted_breaks_list_of_another_shape_exits_2(project: Path) -> None:
    edit(
        project, "pyproject.toml", "[tool.scaffold]\n", '[tool.scaffold]\naccepted_breaks = "all"\n'
    )
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 2, result.output
    assert "[tool.scaffold] accepted_breaks in" in result.stderr
    assert "must be [[tool.scaffold.accepted_breaks]] tables of strings" in result.stderr


def test_outside_a_git_repository_exits_2(tmp_path: Path) -> None:
    project = generated_copy("stock-in-inventory", tmp_path / "shop")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 2, result.output
    assert "git cannot read the repository of" in result.stderr
    assert "not a git repository" in result.stderr  # what git said


def test_an_events_file_at_the_ref_that_does_not_parse_exits_2(project: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    id: int (\n")
    git(project, "commit", "--quiet", "--all", "-m", "broken")
    edit(project, STOCK, "    id: int (\n", "    id: int\n")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 2, result.output
    assert f"as HEAD has them, so nothing can be compared with them: HEAD:{STOCK}:15" in (
        result.stderr
    )
    assert "TypeScript" not in result.stderr and "fix it" not in result.stderr


def test_a_project_moved_into_src_since_the_ref_is_read_where_it_was(project: Path) -> None:
    (project / "src").mkdir()
    git(project, "mv", "shop", "src/shop")
    edit(project, f"src/{STOCK}", "    id: int\n", "    stock_id: int\n")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 1, result.output
    assert f"src/{STOCK}:15: field 'id' of event 'stock_updated'" in result.stdout
    edit(project, f"src/{STOCK}", "    stock_id: int\n", "    id: int\n")
    git(project, "rm", "--quiet", "-r", "--cached", "src")
    git(project, "commit", "--quiet", "-m", "the channels' files gone, still recorded")
    missing = scaffold("check", "--against", "HEAD", project=project)
    assert missing.exit_code == 2, missing.output
    assert f"HEAD has neither its events file ({STOCK} or src/{STOCK}) nor" in missing.stderr


def test_the_first_commit_of_a_repository_has_nothing_to_compare_with(tmp_path: Path) -> None:
    project = generated_copy("stock-in-inventory", tmp_path / "shop")
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 0, result.output
    assert "HEAD has no commit yet (this is the first one): no events to compare with." in (
        result.stdout
    )
    report = json.loads(scaffold("check", "--against", "HEAD", "--json", project=project).stdout)
    assert (report["against"]["commit"], report["against"]["breaks"]) == (None, [])


def test_what_git_says_is_in_the_message_not_a_missing_file(project: Path) -> None:
    blob = git(project, "rev-parse", f"HEAD:./{STOCK}").strip()
    objects = Path(git(project, "rev-parse", "--git-common-dir").strip())
    if not objects.is_absolute():
        objects = project / objects
    (objects / "objects" / blob[:2] / blob[2:]).unlink()  # a corrupt repository
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 2, result.output
    assert f"git cannot read HEAD:{STOCK}: fatal: " in result.stderr


def test_a_git_that_does_not_answer_in_time_is_a_clear_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scaffold_git, "_TIMEOUT", 1e-6)
    with pytest.raises(BadInput, match=r"took more than 1e-06 seconds in "):
        scaffold_git.revision(project, "HEAD")


def test_a_shallow_clone_is_named_as_such(project: Path, tmp_path: Path) -> None:
    edit(project, STOCK, "    id: int\n", "    id: int\n    note: str = ''\n")
    git(project, "commit", "--quiet", "--all", "-m", "a note")
    repository = project.parent.parent
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", "--depth", "1", repository.as_uri(), str(clone))
    result = scaffold("check", "--against", "HEAD~1", project=clone / "services" / "shop")
    assert result.exit_code == 2, result.output
    assert "This clone is shallow" in result.stderr and "git fetch --unshallow" in result.stderr


def test_fields_inherited_from_a_base_in_another_module_are_listed_as_not_compared(
    project: Path,
) -> None:
    edit(project, STOCK, "class StockUpdated(ChannelEvent):", "class StockUpdated(Audited):")
    edit(
        project,
        STOCK,
        "from fastapi_pg_sse import",
        "from shop.audit import Audited\nfrom fastapi_pg_sse import",
    )
    git(project, "commit", "--quiet", "--all", "-m", "an audited event")
    result = scaffold("check", "--against", "HEAD", project=project)
    assert result.exit_code == 0, result.output
    assert (
        f"  not compared  {STOCK}:11: event 'stock_updated' of channel inventory_stock: the"
        " fields it inherits from Audited (not in the events file) are not compared"
    ) in result.stdout
    report = json.loads(scaffold("check", "--against", "HEAD", "--json", project=project).stdout)
    (hidden,) = report["against"]["not_compared"]
    assert (hidden["event"], hidden["bases"]) == ("stock_updated", ["Audited"])


def test_the_json_report_names_every_key_of_a_break(project: Path) -> None:
    edit(
        project,
        STOCK_LEVEL,
        "StockLevelEvent = StockLevelCreated | StockLevelUpdated | StockLevelDeleted",
        "StockLevelEvent = StockLevelCreated | StockLevelUpdated",
    )
    result = scaffold("check", "--against", "HEAD", "--json", project=project)
    (removed,) = json.loads(result.stdout)["against"]["breaks"]
    assert (removed["change"], removed["field"], removed["old"], removed["new"]) == (
        "event removed", None, None, None,
    )  # fmt: skip


def test_the_pre_commit_hook_checks_a_project_in_a_folder_with_its_args(project: Path) -> None:
    assert "args: [--project, <folder>]" in (REPO / "README.md").read_text()
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (entry,) = [hook["entry"] for hook in hooks if hook["id"] == "scaffold-check-events"]
    arguments = [*entry.split()[1:], "--project", "services/shop"]
    result = run_scaffold(*arguments, cwd=project.parent.parent)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "No breaking change to the events of 2 channels since HEAD" in result.stdout


# The README's section, "Breaking changes to events".


def readme_block(start: str) -> str:
    """The example of the README's section that starts with `start`, unindented."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Breaking changes to events\n") :]
    section = section[: section.index("\n### ")]
    blocks = [block for block in section.split("\n\n") if block.startswith("    ")]
    (block,) = [b for b in blocks if b[4:].startswith(start)]
    return "\n".join(line[4:] for line in block.splitlines()) + "\n"


def test_the_readmes_pre_commit_hook_runs_the_check_against_head() -> None:
    config = yaml.safe_load(readme_block("repos:"))
    (hook,) = config["repos"][0]["hooks"]
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    entries = {declared["id"]: declared["entry"] for declared in hooks}
    assert entries[hook["id"]] == "scaffold check --against HEAD"


def test_the_readmes_ci_job_checks_a_pull_request_against_its_target_branch(
    project: Path, tmp_path: Path
) -> None:
    workflow = yaml.safe_load(readme_block("name: events"))
    (job,) = workflow["jobs"].values()
    assert job["steps"][0] == {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}
    command = job["steps"][-1]["run"]
    assert command == "scaffold check --against origin/${{ github.base_ref }}"

    target = git(project, "rev-parse", "--abbrev-ref", "HEAD").strip()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(project.parent.parent), str(clone))
    git(clone, "switch", "--quiet", "--create", "rename-the-id")
    checked_out = clone / "services" / "shop"
    edit(checked_out, STOCK, "    id: int\n", "    stock_id: int\n")
    git(clone, "commit", "--quiet", "--all", "-m", "rename the id")
    arguments = command.replace("${{ github.base_ref }}", target).split()[1:]
    result = run_scaffold(*arguments, cwd=checked_out)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert f"breaking  {STOCK}:15: field 'id'" in result.stdout
    assert f"since origin/{target} (" in result.stdout
