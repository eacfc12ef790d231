"""channels.ts from events files, read with `ast`: each fixture `<name>_events.py` is an events
file, `<name>.channels.ts` the channels.ts of a project whose one channel has it.

Rewrite the `.channels.ts` files with SCAFFOLD_UPDATE_GOLDEN=1, and review their diff.
"""

import importlib.util
import os
from pathlib import Path

import pydantic.alias_generators
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaffold.errors import BadInput
from scaffold.layout import channel_layout, typescript_paths
from scaffold.project import ChannelRecord, Migration, Project, SchemaRecord
from scaffold.pydantic_aliases import ALIAS_GENERATORS
from scaffold.ts_client import typescript_files
from scaffold.typescript import Interface, read_channel_events

FIXTURES = Path(__file__).parent / "typescript_fixtures"
UPDATE = os.environ.get("SCAFFOLD_UPDATE_GOLDEN") == "1"
ORDERS = ChannelRecord("Order", "sales")
STOCK = ChannelRecord("Stock", "inventory")
STOCK_LEVEL = ChannelRecord("StockLevel", "warehouse-ops")
SCHEMA = SchemaRecord("1.0", Migration("0002_fastapi_pg_sse_schema_1_0.sql"))


def project_of(root: Path, *channels: ChannelRecord) -> Project:
    return Project(
        root=root,
        package="shop",
        app_module="shop.main",
        app_variable="app",
        migrations="migrations",
        tests="tests",
        channels=channels,
        typescript="web/realtime",
        schema=(SCHEMA,),
    )


def channels_ts(project: Project, events: dict[ChannelRecord, str]) -> str:
    """channels.ts, with each channel's events file as the command would create it (none is on
    disk)."""
    layouts = [channel_layout(project, record) for record in project.channels]
    paths = typescript_paths(project)
    assert paths is not None
    rendered = {
        channel_layout(project, record).events_path: text for record, text in events.items()
    }
    return typescript_files(project.root, paths, layouts, rendered)[paths.channels]


@pytest.mark.parametrize(
    ("fixture", "record"),
    [
        ("aliases", STOCK),
        ("annotations", ORDERS),
        ("imported_base", STOCK),
        ("stock", STOCK),
        ("stock_level", STOCK_LEVEL),
    ],
)
def test_events_file_becomes_typescript(
    fixture: str, record: ChannelRecord, tmp_path: Path
) -> None:
    source = (FIXTURES / f"{fixture}_events.py").read_text()
    actual = channels_ts(project_of(tmp_path, record), {record: source})
    expected = FIXTURES / f"{fixture}.channels.ts"
    if UPDATE:
        expected.write_text(actual)
    assert actual == expected.read_text()


def test_properties_are_named_as_pydantic_dumps_the_fields_by_alias() -> None:
    """The aliases fixture, imported: each model's properties, its base's included, are the keys
    of pydantic's serialization schema by alias."""
    path = FIXTURES / "aliases_events.py"
    spec = importlib.util.spec_from_file_location("aliases_events", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    interfaces = {
        interface.name: interface
        for interface in read_channel_events(path.read_text(), "aliases", "StockEvent").interfaces
    }

    def names(interface: Interface) -> list[str]:
        inherited = [] if interface.extends is None else names(interfaces[interface.extends])
        return inherited + [prop.name for prop in interface.properties]

    for name, interface in interfaces.items():
        schema = getattr(module, name).model_json_schema(mode="serialization", by_alias=True)
        assert sorted(names(interface)) == sorted(schema["properties"]), name


@given(st.text(alphabet="abcXYZ019_-", max_size=12))
def test_alias_generators_convert_names_as_pydantics_do(name: str) -> None:
    for qualified, generator in ALIAS_GENERATORS.items():
        function = getattr(pydantic.alias_generators, qualified.rpartition(".")[2])
        assert generator(name) == function(name), qualified


def test_the_users_events_file_on_disk_wins_over_the_one_the_command_would_create(
    tmp_path: Path,
) -> None:
    project = project_of(tmp_path, STOCK)
    on_disk = tmp_path / channel_layout(project, STOCK).events_path
    on_disk.parent.mkdir(parents=True)
    source = (FIXTURES / "stock_events.py").read_text()
    on_disk.write_text(source.replace('"stock_updated"', '"stock_changed"'))
    text = channels_ts(project, {STOCK: source})
    assert "  stock_changed: StockUpdated;" in text
    assert "stock_updated" not in text


def test_a_class_name_two_channels_use_is_prefixed_in_both(tmp_path: Path) -> None:
    other = ChannelRecord("Stock", "warehouse")
    source = (FIXTURES / "stock_events.py").read_text()
    text = channels_ts(project_of(tmp_path, STOCK, other), {STOCK: source, other: source})
    assert "export interface InventoryStockStockUpdated {" in text
    assert "  stock_updated: InventoryStockStockUpdated;" in text
    assert "export interface WarehouseStockStockUpdated {" in text
    assert "export interface StockUpdated " not in text


def test_a_class_named_like_a_typescript_type_is_prefixed(tmp_path: Path) -> None:
    source = (FIXTURES / "stock_events.py").read_text().replace("StockUpdated", "Record")
    text = channels_ts(project_of(tmp_path, STOCK), {STOCK: source})
    assert "export interface InventoryStockRecord {" in text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("    id: int\n", "    id: int =\n"),
            "shop/modules/inventory/services/stock_events.py:16: invalid syntax",
        ),
        (
            ("StockEvent = StockUpdated\n", "Events = StockUpdated\n"),
            "shop/modules/inventory/services/stock_events.py does not assign StockEvent",
        ),
        (
            ("StockEvent = StockUpdated\n", "StockEvent = StockUpdated | StockRemoved\n"),
            "StockEvent lists StockRemoved, which is not a ChannelEvent class of this file",
        ),
        (
            ('event_type: ClassVar[str] = "stock_updated"', "is_abstract = True"),
            "StockEvent lists StockUpdated, whose event_type is not in this file",
        ),
        (
            ('"stock_updated"', '"expired"'),
            "lists the event type 'expired' which the stream itself sends",
        ),
        (
            ("StockEvent = StockUpdated\n", "StockEvent = StockUpdated | StockUpdated\n"),
            "lists the event type 'stock_updated' twice",
        ),
        (
            ("    id: int\n", "    id: int = Field(alias=ID_ALIAS)\n"),
            "stock_events.py:16: alias of StockUpdated.id is not a string scaffold can read",
        ),
        (
            (
                '"stock_updated"\n',
                '"stock_updated"\n    model_config = {"alias_generator": str.upper}\n',
            ),
            "stock_events.py:15: the alias_generator of StockUpdated names fields in a way scaffold"
            " cannot tell from the file alone",
        ),
        (
            (
                "class StockUpdated(ChannelEvent):",
                "from shop.naming import to_camel\n\n\n"
                "class StockUpdated(ChannelEvent, alias_generator=to_camel):",
            ),
            "stock_events.py:14: the alias_generator of StockUpdated names fields",
        ),
    ],
    ids=[
        "syntax-error",
        "no-alias",
        "foreign-class",
        "abstract-event",
        "reserved",
        "twice",
        "alias-not-a-string",
        "other-alias-generator",
        "to-camel-from-elsewhere",
    ],
)
def test_an_events_file_scaffold_cannot_read_is_refused_naming_it(
    edit: tuple[str, str], message: str, tmp_path: Path
) -> None:
    source = (FIXTURES / "stock_events.py").read_text()
    assert edit[0] in source
    with pytest.raises(BadInput) as refused:
        channels_ts(project_of(tmp_path, STOCK), {STOCK: source.replace(*edit)})
    assert message in str(refused.value)
