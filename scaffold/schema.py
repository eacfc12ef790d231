"""What a project's SQL migrations say about its tables: which exist, with which columns.

`create-sse-channel --table` checks its table and columns against it. The migrations are read
with PostgreSQL's own parser (pglast), statement by statement in file-name order; where they
change tables in ways this module does not follow (CREATE TABLE ... AS or LIKE, inheritance, DO
blocks, files that do not parse), it says it cannot tell rather than guess.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ObjectType
from pglast.parser import ParseError


@dataclass
class Schema:
    """The tables the migrations leave, as far as they show it."""

    tables: dict[str, set[str]] = field(default_factory=dict)
    """Each table and its columns."""
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
        tables[name] = {str(e.colname) for e in elements if isinstance(e, ast.ColumnDef)}
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
            tables[name] = set()
            schema.partly_known.add(name)
    elif isinstance(statement, ast.AlterTableStmt):
        columns = tables.get(_name_of(statement.relation), set())
        for command in statement.cmds or ():
            if command.subtype == AlterTableType.AT_AddColumn:
                columns.add(str(command.def_.colname))
            elif command.subtype == AlterTableType.AT_DropColumn:
                columns.discard(str(command.name))
    elif isinstance(statement, ast.RenameStmt) and statement.relation is not None:
        name = _name_of(statement.relation)
        if name not in tables:
            return
        if statement.renameType == ObjectType.OBJECT_TABLE:
            tables[str(statement.newname)] = tables.pop(name)
            if name in schema.partly_known:
                schema.partly_known.add(str(statement.newname))
        elif statement.renameType == ObjectType.OBJECT_COLUMN:
            tables[name].discard(str(statement.subname))
            tables[name].add(str(statement.newname))
    elif isinstance(statement, ast.DropStmt) and statement.removeType == ObjectType.OBJECT_TABLE:
        for names in statement.objects or ():
            schema_name = names[0].sval if len(names) > 1 else "public"
            name = str(names[-1].sval)
            tables.pop(name if schema_name == "public" else f"{schema_name}.{name}", None)
    elif isinstance(statement, ast.DoStmt):
        schema.unknowns.append(f"{source} runs a DO block")


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
