"""What a project's SQL migrations say about its tables: which exist, with which columns.

`create-sse-channel --table` checks its table and columns against it, and the channel's events
file types the trigger's payload with the columns' types. The migrations are read with
PostgreSQL's own parser (pglast), statement by statement in file-name order; where they change
tables in ways this module does not follow (CREATE TABLE ... AS or LIKE, inheritance, DO blocks,
files that do not parse), it says it cannot tell rather than guess.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.parser import ParseError

_SERIALS = {"smallserial": "int2", "serial": "int4", "bigserial": "int8"}


@dataclass(frozen=True)
class SqlType:
    """A column's type as the migrations name it: `int4`, `varchar`, a user type such as `mood`
    (`billing.mood` in another schema than `public`); None when they do not name it plainly."""

    name: str | None
    array_depth: int = 0
    """How many `[]` follow the name: 1 for `text[]`."""


@dataclass(frozen=True)
class Column:
    type: SqlType
    not_null: bool


@dataclass
class Schema:
    """The tables the migrations leave, as far as they show it."""

    tables: dict[str, dict[str, Column]] = field(default_factory=dict)
    """Each table and its columns, in the order the table has them."""
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each enum type (named as `SqlType` names it) and its labels."""
    domains: dict[str, SqlType] = field(default_factory=dict)
    """Each domain and the type it is based on."""
    foreign_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each table's single-column foreign keys: the column, and the table it references."""
    partly_known: set[str] = field(default_factory=set)
    """Tables whose columns the migrations do not fully show."""
    unknowns: list[str] = field(default_factory=list)
    """What the migrations do that this module cannot follow, said for a person."""

    def table_problem(self, table: str, columns: Iterable[str]) -> tuple[str | None, str | None]:
        """(why `table` or one of `columns` certainly does not exist, why it cannot tell)."""
        if table not in self.tables:
            if self.unknowns or not self.tables:
                return None, self._cannot_tell(f"whether table {table} exists")
            return f"no migration creates table {table} (tables: {_listed(self.tables)})", None
        missing = [column for column in columns if column not in self.tables[table]]
        if not missing:
            return None, None
        if table in self.partly_known or self.unknowns:
            return None, self._cannot_tell(f"whether {table} has {', '.join(missing)}")
        return (
            f"table {table} has no column {', '.join(missing)} in the migrations"
            f" (columns: {_listed(self.tables[table])})"
        ), None

    def referenced_problem(
        self, table: str, foreign_key: str, column: str
    ) -> tuple[str | None, str | None]:
        """(why the row that `table.foreign_key` references certainly has no `column`, or why it
        cannot tell), for a table and column that exist."""
        referenced = self.foreign_keys.get(table, {}).get(foreign_key)
        if referenced is None:
            if table in self.partly_known or self.unknowns:
                return None, self._cannot_tell(f"whether {table}.{foreign_key} is a foreign key")
            return (
                f"{table}.{foreign_key} is not a single-column foreign key in the migrations",
                None,
            )
        return self.table_problem(referenced, [column])

    def _cannot_tell(self, what: str) -> str:
        why = "; ".join(self.unknowns) if self.unknowns else "they create no table"
        return f"scaffold cannot tell from the migrations {what} ({why})"


def read_schema(migrations: Iterable[Path]) -> Schema:
    """Follow the SQL `migrations`, in the order given, and return the schema they leave."""
    schema = Schema()
    for path in migrations:
        try:
            statements = parse_sql(path.read_text(encoding="utf-8"))
        except (ParseError, UnicodeDecodeError) as error:
            schema.unknowns.append(f"{path.name} does not parse: {error}")
            continue
        for raw in statements:
            _follow(schema, raw.stmt, path.name)
    return schema


def _follow(schema: Schema, statement: ast.Node | None, source: str) -> None:
    """Apply one statement's effect on tables and columns to `schema`."""
    tables = schema.tables
    if isinstance(statement, ast.CreateStmt):
        name = _name_of(statement.relation)
        if name in tables:  # CREATE TABLE IF NOT EXISTS of a table that exists
            return
        elements = statement.tableElts or ()
        tables[name] = {}
        for element in elements:
            if isinstance(element, ast.ColumnDef):
                _add_column(schema, name, element)
            elif isinstance(element, ast.Constraint):
                _constrain(schema, name, element)
        if (
            statement.inhRelations
            or statement.ofTypename
            or statement.partbound
            or any(isinstance(e, ast.TableLikeClause) for e in elements)
        ):
            schema.partly_known.add(name)
    elif isinstance(statement, ast.CreateTableAsStmt):
        if statement.objtype == ObjectType.OBJECT_TABLE and statement.into is not None:
            name = _name_of(statement.into.rel)
            tables[name] = {}
            schema.partly_known.add(name)
    elif isinstance(statement, ast.AlterTableStmt):
        name = _name_of(statement.relation)
        if name in tables:
            for command in statement.cmds or ():
                _alter(schema, name, command)
    elif isinstance(statement, ast.RenameStmt) and statement.relation is not None:
        name = _name_of(statement.relation)
        if name not in tables:
            return
        if statement.renameType == ObjectType.OBJECT_TABLE:
            _rename_table(schema, name, str(statement.newname))
        elif statement.renameType == ObjectType.OBJECT_COLUMN:
            old, new = str(statement.subname), str(statement.newname)
            tables[name] = {new if key == old else key: c for key, c in tables[name].items()}
            keys = schema.foreign_keys.get(name, {})
            if old in keys:
                keys[new] = keys.pop(old)
    elif isinstance(statement, ast.DropStmt):
        _drop(schema, statement)
    elif isinstance(statement, ast.CreateEnumStmt):
        schema.enums[_qualified(statement.typeName or ())] = tuple(
            v.sval for v in statement.vals or ()
        )
    elif isinstance(statement, ast.AlterEnumStmt):
        _alter_enum(schema.enums, statement)
    elif isinstance(statement, ast.CreateDomainStmt):
        schema.domains[_qualified(statement.domainname or ())] = _sql_type(statement.typeName)
    elif isinstance(statement, ast.DoStmt):
        schema.unknowns.append(f"{source} runs a DO block")


def _column(definition: ast.ColumnDef) -> Column:
    """A column as its definition says: serial types and identity columns are never NULL."""
    sql_type = _sql_type(definition.typeName)
    not_null_kinds = (
        ConstrType.CONSTR_NOTNULL,
        ConstrType.CONSTR_PRIMARY,
        ConstrType.CONSTR_IDENTITY,
    )
    not_null = (
        bool(definition.is_not_null)
        or sql_type.name in _SERIALS
        or any(c.contype in not_null_kinds for c in definition.constraints or ())
    )
    if sql_type.name in _SERIALS and not sql_type.array_depth:
        sql_type = SqlType(_SERIALS[sql_type.name])
    return Column(sql_type, not_null)


def _sql_type(name: ast.TypeName | None) -> SqlType:
    if name is None or name.pct_type or not name.names:
        return SqlType(None)
    return SqlType(_qualified(name.names), len(name.arrayBounds or ()))


def _qualified(names: tuple[ast.String, ...]) -> str:
    """A type's name without `pg_catalog` or `public`, as `SqlType` names it."""
    *schema, name = (str(part.sval) for part in names)
    return name if schema in ([], ["pg_catalog"], ["public"]) else ".".join([*schema, name])


def _add_column(schema: Schema, table: str, definition: ast.ColumnDef) -> None:
    """Add a column, and its foreign key if it has one, to `table`."""
    name = str(definition.colname)
    schema.tables[table][name] = _column(definition)
    for constraint in definition.constraints or ():
        if constraint.contype == ConstrType.CONSTR_FOREIGN:
            _add_foreign_key(schema, table, name, constraint)


def _constrain(schema: Schema, table: str, constraint: ast.Constraint) -> None:
    """Make the columns of a table's primary key NOT NULL; record a single-column foreign key."""
    if constraint.contype == ConstrType.CONSTR_PRIMARY:
        for key in constraint.keys or ():
            _set_not_null(schema.tables[table], str(key.sval), not_null=True)
    elif constraint.contype == ConstrType.CONSTR_FOREIGN and len(constraint.fk_attrs or ()) == 1:
        (column,) = constraint.fk_attrs or ()
        _add_foreign_key(schema, table, str(column.sval), constraint)


def _add_foreign_key(schema: Schema, table: str, column: str, constraint: ast.Constraint) -> None:
    schema.foreign_keys.setdefault(table, {})[column] = _name_of(constraint.pktable)


def _alter(schema: Schema, table: str, command: ast.AlterTableCmd) -> None:
    """Apply one command of ALTER TABLE to the table's columns."""
    columns = schema.tables[table]
    kind, definition = command.subtype, command.def_
    if kind == AlterTableType.AT_AddColumn and isinstance(definition, ast.ColumnDef):
        _add_column(schema, table, definition)
    elif kind == AlterTableType.AT_DropColumn:
        columns.pop(str(command.name), None)
        schema.foreign_keys.get(table, {}).pop(str(command.name), None)
    elif kind == AlterTableType.AT_AlterColumnType and isinstance(definition, ast.ColumnDef):
        _set_type(columns, str(command.name), _sql_type(definition.typeName))
    elif kind in (AlterTableType.AT_SetNotNull, AlterTableType.AT_DropNotNull):
        _set_not_null(columns, str(command.name), not_null=kind == AlterTableType.AT_SetNotNull)
    elif kind == AlterTableType.AT_AddConstraint and isinstance(definition, ast.Constraint):
        _constrain(schema, table, definition)


def _rename_table(schema: Schema, old: str, new: str) -> None:
    """Rename a table, and every foreign key's reference to it."""
    schema.tables[new] = schema.tables.pop(old)
    if old in schema.partly_known:
        schema.partly_known.add(new)
    if old in schema.foreign_keys:
        schema.foreign_keys[new] = schema.foreign_keys.pop(old)
    for keys in schema.foreign_keys.values():
        for column, referenced in keys.items():
            if referenced == old:
                keys[column] = new


def _set_type(columns: dict[str, Column], name: str, sql_type: SqlType) -> None:
    if name in columns:
        columns[name] = Column(sql_type, columns[name].not_null)


def _set_not_null(columns: dict[str, Column], name: str, *, not_null: bool) -> None:
    if name in columns:
        columns[name] = Column(columns[name].type, not_null)


def _alter_enum(enums: dict[str, tuple[str, ...]], statement: ast.AlterEnumStmt) -> None:
    """Add or rename a label of an enum the migrations created."""
    name = _qualified(statement.typeName or ())
    labels = enums.get(name)
    if labels is None or statement.newVal is None:
        return
    if statement.oldVal is not None:
        enums[name] = tuple(
            statement.newVal if label == statement.oldVal else label for label in labels
        )
    elif statement.newVal not in labels:
        neighbour = statement.newValNeighbor
        at = (
            labels.index(neighbour) + bool(statement.newValIsAfter)
            if neighbour in labels
            else len(labels)
        )
        enums[name] = (*labels[:at], statement.newVal, *labels[at:])


def _drop(schema: Schema, statement: ast.DropStmt) -> None:
    """Forget the tables, enums or domains a DROP statement drops."""
    if statement.removeType == ObjectType.OBJECT_TABLE:
        for names in statement.objects or ():
            schema_name = names[0].sval if len(names) > 1 else "public"
            name = str(names[-1].sval)
            table = name if schema_name == "public" else f"{schema_name}.{name}"
            schema.tables.pop(table, None)
            schema.foreign_keys.pop(table, None)
    elif statement.removeType in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
        for type_name in statement.objects or ():
            name = _qualified(type_name.names)
            schema.enums.pop(name, None)
            schema.domains.pop(name, None)


def _name_of(relation: ast.RangeVar | None) -> str:
    """A table's name as the generated SQL names it: without a schema, unless one other than
    `public` is named (then `--table`, which names no schema, cannot mean it)."""
    if relation is None:
        return ""
    if relation.schemaname not in (None, "public"):
        return f"{relation.schemaname}.{relation.relname}"
    return str(relation.relname)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"
