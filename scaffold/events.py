"""The starting content of a channel's events file: its event models, as the user then owns them.

A trigger's events carry its table's row, so their model gets the row's columns, typed from the
SQL migrations (`scaffold.schema`) as the JSON that PostgreSQL's `to_jsonb` makes of them reads
in Python. What the migrations do not tell, the model leaves open and says so.
"""

import keyword
import re
from dataclasses import dataclass

from scaffold.layout import sql_migrations
from scaffold.project import Project, Trigger
from scaffold.pycode import annotated, module_sort_key
from scaffold.schema import Column, Schema, read_schema

_PYTHON_TYPES = {
    **dict.fromkeys(("int2", "int4", "int8", "oid"), "int"),
    # numeric is a JSON number too: a float, which pydantic writes back as a number (a Decimal
    # it would write as a string); money is a string such as "$3.50".
    **dict.fromkeys(("float4", "float8", "numeric"), "float"),
    "bool": "bool",
    **dict.fromkeys(
        (
            "text", "varchar", "bpchar", "char", "name", "citext", "bytea", "money", "interval",
            "inet", "cidr", "macaddr", "macaddr8", "xml", "bit", "varbit", "tsvector", "tsquery",
            "timetz",  # `10:00:00+00`, which Python's time does not read
        ),
        "str",
    ),
    "uuid": "UUID",
    "timestamp": "datetime.datetime",
    "timestamptz": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    **dict.fromkeys(("json", "jsonb"), "JsonValue"),
}  # fmt: skip
"""The Python type of each PostgreSQL type's JSON; any other type's is any JSON value."""

_IMPORTS = {
    "datetime.": ("standard", "import datetime"),
    "Literal[": ("typing", "Literal"),
    "UUID": ("standard", "from uuid import UUID"),
    "JsonValue": ("pydantic", "JsonValue"),
}
"""What an annotation that holds the key needs imported."""

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

    fields: tuple[tuple[str, str], ...]
    """(column, Python annotation) of each column the model declares, in the table's order."""
    unknown: str | None
    """Why scaffold cannot tell the row's columns, when it cannot."""
    untyped: tuple[str, ...]
    """Columns that are no valid field name (`class`, `_version`): left to the extra fields."""

    @property
    def imports(self) -> tuple[list[str], list[str]]:
        """The standard library's import lines, in ruff's order, and the names from `pydantic`
        that the fields and an open model need."""
        needed: dict[str, set[str]] = {"standard": set(), "typing": {"ClassVar"}, "pydantic": set()}
        for _, annotation in self.fields:
            for key, (block, line) in _IMPORTS.items():
                if key in annotation:
                    needed[block].add(line)
        if self.open:
            needed["pydantic"].add("ConfigDict")
        standard = [
            *needed["standard"],
            f"from typing import {', '.join(sorted(needed['typing']))}",
        ]
        standard.sort(key=lambda line: (line.startswith("from"), module_sort_key(line.split()[1])))
        return standard, sorted(needed["pydantic"])

    @property
    def open(self) -> bool:
        """Whether the model accepts fields it does not declare."""
        return self.unknown is not None or bool(self.untyped)


def row_model(project: Project, trigger: Trigger) -> RowModel:
    """The row model of `trigger`'s events, with the columns the migrations show."""
    if project.alembic is not None:
        return RowModel((), "scaffold does not read Alembic revisions", ())
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


def _annotation(schema: Schema, name: str, column: Column) -> str:
    """The Python type of the column's JSON: `| None` when it may be NULL, and its arrays' items
    too, which may always be. An enum's labels are a `Literal` if the field fits on a line."""
    annotation = _python_annotation(schema, column, literal=True)
    if "Literal[" in annotation and "\n" in annotated(name, annotation):
        return _python_annotation(schema, column, literal=False)
    return annotation


def _python_annotation(schema: Schema, column: Column, *, literal: bool) -> str:
    sql_type = schema.domains.get(column.type.name or "", column.type)
    labels = schema.enums.get(sql_type.name or "")
    if labels is not None:
        simple = literal and labels and all(_SIMPLE_LABEL.fullmatch(label) for label in labels)
        annotation = "Literal[{}]".format(", ".join(f'"{x}"' for x in labels)) if simple else "str"
    else:
        annotation = _PYTHON_TYPES.get(sql_type.name or "", "JsonValue")
    for _ in range(column.type.array_depth + sql_type.array_depth):
        annotation = f"list[{_nullable(annotation)}]"
    return annotation if column.not_null else _nullable(annotation)


def _nullable(annotation: str) -> str:
    return annotation if annotation == "JsonValue" else f"{annotation} | None"
