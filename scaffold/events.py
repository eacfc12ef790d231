"""The starting content of a channel's events file: its event models, as the user then owns them.

A trigger's events carry its table's row, so their model gets the row's columns, typed from the
SQL migrations (`scaffold.schema`) as the JSON that PostgreSQL's `to_jsonb` makes of them reads
in Python. What the migrations do not tell, the model leaves open and says so.

pglast, which reads the migrations, is imported only for a trigger's events.
"""

import keyword
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scaffold.layout import sql_migrations
from scaffold.project import Project, Trigger
from scaffold.pycode import Import, annotated, import_block

if TYPE_CHECKING:
    from scaffold.schema import Column, Schema


@dataclass(frozen=True)
class Annotation:
    """A field's annotation, and what it names that the events file imports."""

    text: str
    imports: frozenset[Import] = frozenset()

    def wrapped(self, template: str) -> "Annotation":
        """`template` with `{}` replaced by this annotation: `list[{}]`, say."""
        return Annotation(template.format(self.text), self.imports)


def _type(text: str, *imports: Import) -> Annotation:
    return Annotation(text, frozenset(imports))


_DATETIME = Import("datetime")
_JSON_VALUE = _type("JsonValue", Import("pydantic", "JsonValue"))
_PYTHON_TYPES = {
    **dict.fromkeys(("int2", "int4", "int8", "oid"), _type("int")),
    # numeric is a JSON number too: a float, which pydantic writes back as a number (a Decimal
    # it would write as a string); money is a string such as "$3.50".
    **dict.fromkeys(("float4", "float8", "numeric"), _type("float")),
    "bool": _type("bool"),
    **dict.fromkeys(
        (
            "text", "varchar", "bpchar", "char", "name", "citext", "bytea", "money", "interval",
            "inet", "cidr", "macaddr", "macaddr8", "xml", "bit", "varbit", "tsvector", "tsquery",
            "timetz",  # `10:00:00+00`, which Python's time does not read
        ),
        _type("str"),
    ),
    "uuid": _type("UUID", Import("uuid", "UUID")),
    "timestamp": _type("datetime.datetime", _DATETIME),
    "timestamptz": _type("datetime.datetime", _DATETIME),
    "date": _type("datetime.date", _DATETIME),
    "time": _type("datetime.time", _DATETIME),
    **dict.fromkeys(("json", "jsonb"), _JSON_VALUE),
}  # fmt: skip
"""The Python type of each PostgreSQL type's JSON; any other type's is any JSON value."""

_EVENT_IMPORTS = (Import("typing", "ClassVar"), Import("fastapi_pg_sse", "ChannelEvent"))
"""What every events file imports: its events' base class and `event_type`'s annotation."""

_RESERVED = frozenset(
    {
        "event_type", "datetime", "copy", "dict", "json", "construct", "schema", "schema_json",
        "validate", "from_orm", "parse_obj", "parse_raw", "parse_file", "update_forward_refs",
    }
)  # fmt: skip
"""Column names that cannot be a field as they are: the events' class variable, the module
the annotations use, and the attributes of pydantic's BaseModel (like those that start with
`model_`)."""

_SIMPLE_LABEL = re.compile(r"[A-Za-z0-9_ .:/+-]*")


@dataclass(frozen=True)
class RowModel:
    """The model of a trigger's row: the typed fields, and what it leaves open."""

    fields: tuple[tuple[str, Annotation], ...]
    """(column, Python annotation) of each column the model declares, in the table's order."""
    unknown: str | None
    """Why scaffold cannot tell the row's columns, when it cannot."""
    untyped: tuple[str, ...]
    """Columns that are no valid field name (`class`, `_version`): left to the extra fields."""

    @property
    def open(self) -> bool:
        """Whether the model accepts fields it does not declare."""
        return self.unknown is not None or bool(self.untyped)


def events_imports(model: RowModel | None) -> str:
    """The import lines of an events file: those of its events, and of its row model if any."""
    imports = set(_EVENT_IMPORTS)
    if model is not None:
        imports.update(name for _, annotation in model.fields for name in annotation.imports)
        if model.open:
            imports.add(Import("pydantic", "ConfigDict"))
    return import_block(imports)


def row_model(project: Project, trigger: Trigger) -> RowModel:
    """The row model of `trigger`'s events, with the columns the migrations show."""
    if project.alembic is not None:
        return RowModel((), "scaffold does not read Alembic revisions", ())
    from scaffold.schema import read_schema

    schema = read_schema(sql_migrations(project))
    table = trigger.table
    columns = schema.tables.get(table, {})
    chosen = trigger.columns or tuple(columns)
    missing = [column for column in chosen if column not in columns]
    if schema.unknowns:
        unknown: str | None = "; ".join(schema.unknowns)
    elif table not in schema.tables:
        unknown = f"no migration creates table {table}"
    elif table in schema.partly_known:
        unknown = f"they do not show every column of {table}"
    else:
        unknown = f"{table} has no column {', '.join(missing)} there" if missing else None
    if unknown is not None:
        return RowModel((), unknown, ())
    return RowModel(
        tuple(
            (column, _annotation(schema, column, columns[column]))
            for column in chosen
            if _field_name(column)
        ),
        None,
        tuple(column for column in chosen if not _field_name(column)),
    )


def _field_name(column: str) -> bool:
    """Whether the column can be a field of the model under its own name."""
    return not (
        keyword.iskeyword(column) or column.startswith(("_", "model_")) or column in _RESERVED
    )


def _annotation(schema: "Schema", name: str, column: "Column") -> Annotation:
    """The Python type of the column's JSON: `| None` when it may be NULL, and its arrays' items
    too, which may always be. An enum's labels are a `Literal` if the field fits on a line."""
    annotation = _python_annotation(schema, column, literal=True)
    if annotation.text.startswith("Literal[") and "\n" in annotated(name, annotation.text):
        return _python_annotation(schema, column, literal=False)
    return annotation


def _python_annotation(schema: "Schema", column: "Column", *, literal: bool) -> Annotation:
    sql_type = schema.domains.get(column.type.name or "", column.type)
    labels = schema.enums.get(sql_type.name or "")
    if labels is None:
        annotation = _PYTHON_TYPES.get(sql_type.name or "", _JSON_VALUE)
    elif literal and labels and all(_SIMPLE_LABEL.fullmatch(label) for label in labels):
        quoted = ", ".join(f'"{label}"' for label in labels)
        annotation = _type(f"Literal[{quoted}]", Import("typing", "Literal"))
    else:
        annotation = _type("str")
    for _ in range(column.type.array_depth + sql_type.array_depth):
        annotation = _nullable(annotation).wrapped("list[{}]")
    return annotation if column.not_null else _nullable(annotation)


def _nullable(annotation: Annotation) -> Annotation:
    return annotation if annotation == _JSON_VALUE else annotation.wrapped("{} | None")
