"""Insert a valid row into any table, built from what PostgreSQL knows of it: for tests.

A trigger test needs a row of the user's table, and the table has columns of its own (NOT NULL
without a default, enums, foreign keys). `insert_row` gives a value to each column that needs
one, chosen from its type, and to the columns named in `fill`; a single-column foreign key gets
a new row of the table it references, built the same way, in the same statement (and `fill` may
name a column of that row, as a trigger's user column through a foreign key does:
`article_id.author_id`). What it cannot fill, it refuses, naming the column and the file that
should insert the row by hand instead.
"""

import random
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

_TEXT_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_VALUE_BY_CATEGORY = {
    "A": "{}",  # arrays: empty
    "B": "false",
    "D": "now",  # date, time and timestamp types all read 'now'
    "I": "127.0.0.1",  # inet, cidr
    "N": "1",  # numbers: 1 passes the usual CHECK (x > 0), (x >= 0)
    "R": "empty",  # ranges
    "T": "0",  # interval
}
_VALUE_BY_TYPE = {"json": "{}", "jsonb": "{}", "jsonpath": "$"}


class RowNotBuilt(Exception):
    """`insert_row` cannot build a valid row; the message says why and which file to edit."""


async def insert_row(
    connection: asyncpg.Connection,
    table: str,
    *,
    fill: Sequence[str] = (),
    remedy: str | None = None,
) -> asyncpg.Record:
    """Insert a row into `table` and return it (`RETURNING *`).

    Columns that are NOT NULL (or of a NOT NULL domain) without a default, identity or
    generation get a value, and so do the columns in `fill` (the row's user column, say) unless
    PostgreSQL gives them one; the others keep their defaults or NULL. A path in `fill`,
    `<fk_column>.<column>` (`fk_column` the single column of a foreign key, and not a column
    named with the dot), fills `column` of the new row that `fk_column` references. `RowNotBuilt`
    says what to do instead: `remedy`, or by default to insert the row by hand in the calling file.
    """
    if remedy is None:
        remedy = f"insert the row yourself in {sys._getframe(1).f_code.co_filename}"
    builder = _Builder(connection, remedy)
    try:
        insert = await builder.insert(table, tuple(fill), tables=())
        row = await connection.fetchrow(
            f"{builder.with_clause()}{insert} RETURNING *", *builder.values
        )
    except asyncpg.PostgresError as error:
        raise RowNotBuilt(
            f"PostgreSQL refused the row built for {table}: {error}; {remedy}"
        ) from error
    assert row is not None, "INSERT ... RETURNING of one row returns it"
    return row


@dataclass
class _Column:
    name: str
    type_oid: int
    type_modifier: int
    needs_value: bool
    """NOT NULL (or of a NOT NULL domain) and given no value by PostgreSQL."""
    has_default: bool
    """Given a value by PostgreSQL: a default, an identity or a generation."""


@dataclass
class _Builder:
    """Collects the statement's parameters and the inserts of referenced rows (as CTEs)."""

    connection: asyncpg.Connection
    remedy: str
    """What `RowNotBuilt` says to do instead."""
    values: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)

    def with_clause(self) -> str:
        return f"WITH {', '.join(self.parents)} " if self.parents else ""

    async def insert(self, table: str, fill: tuple[str, ...], *, tables: tuple[int, ...]) -> str:
        """`INSERT INTO table (...) VALUES (...)` for a valid row, its parents added as CTEs."""
        oid, name = await self._table(table)
        if oid in tables:
            raise self._refusal(table, "its foreign keys reference it back in a cycle")
        columns = await self._columns(oid)
        own, through = _paths(fill, {column.name for column in columns})
        unknown = sorted(set(own) - {column.name for column in columns})
        if unknown:
            raise self._refusal(table, f"it has no column {', '.join(unknown)}")
        references = await self._single_column_references(oid)
        if astray := sorted(set(through) - set(references)):
            raise self._refusal(
                table, f"column {', '.join(astray)} is not the single column of a foreign key"
            )
        chosen = [
            column
            for column in columns
            if column.needs_value
            or column.name in through
            or (column.name in own and not column.has_default)
        ]
        expressions = []
        for column in chosen:
            if column.name in references:
                parent, key = references[column.name]
                parent_fill = (key, *through.get(column.name, ()))
                parent_insert = await self.insert(parent, parent_fill, tables=(*tables, oid))
                cte = f"parent_{len(self.parents) + 1}"  # after the parent's own parents
                self.parents.append(f"{cte} AS ({parent_insert} RETURNING {_quote(key)})")
                expressions.append(f"(SELECT {_quote(key)} FROM {cte})")
                continue
            self.values.append(await self._value(oid, table, column, unique=column.name in own))
            type_name = await self.connection.fetchval(
                "SELECT format_type($1, $2)", column.type_oid, column.type_modifier
            )
            expressions.append(f"${len(self.values)}::text::{type_name}")
        if not chosen:
            return f"INSERT INTO {name} DEFAULT VALUES"
        names = ", ".join(_quote(column.name) for column in chosen)
        return f"INSERT INTO {name} ({names}) VALUES ({', '.join(expressions)})"

    async def _table(self, table: str) -> tuple[int, str]:
        found = await self.connection.fetchrow(
            "SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name"
            " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE c.oid = to_regclass($1)",
            table,
        )
        if found is None:
            raise RowNotBuilt(f"there is no table {table}; {self.remedy}")
        return found["oid"], found["name"]

    async def _columns(self, oid: int) -> list[_Column]:
        rows = await self.connection.fetch(
            "SELECT a.attname, a.atttypid, a.atttypmod,"
            " a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' AS has_default,"
            " (a.attnotnull OR t.typnotnull) AS not_null"
            " FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid"
            " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            oid,
        )
        return [
            _Column(
                row["attname"],
                row["atttypid"],
                row["atttypmod"],
                needs_value=row["not_null"] and not row["has_default"],
                has_default=row["has_default"],
            )
            for row in rows
        ]

    async def _single_column_references(self, oid: int) -> dict[str, tuple[str, str]]:
        """{column: (referenced table, referenced column)} of the one-column foreign keys."""
        rows = await self.connection.fetch(
            "SELECT a.attname AS column_name, c.confrelid::regclass::text AS parent,"
            " p.attname AS parent_column"
            " FROM pg_constraint AS c"
            " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " JOIN pg_attribute AS p ON p.attrelid = c.confrelid AND p.attnum = c.confkey[1]"
            " WHERE c.conrelid = $1 AND c.contype = 'f' AND cardinality(c.conkey) = 1",
            oid,
        )
        return {row["column_name"]: (row["parent"], row["parent_column"]) for row in rows}

    async def _value(self, oid: int, table: str, column: _Column, *, unique: bool) -> str:
        """A text value that casts to the column's type and passes its one-column CHECKs; a
        `unique` one (a user id, a referenced key) is unlikely to be any existing row's."""
        base = await self.connection.fetchrow(
            "WITH RECURSIVE chain AS ("
            " SELECT oid, typtype, typbasetype, typtypmod, typcategory, typname"
            " FROM pg_type WHERE oid = $1"
            " UNION ALL SELECT t.oid, t.typtype, t.typbasetype, t.typtypmod, t.typcategory,"
            " t.typname FROM pg_type AS t JOIN chain ON t.oid = chain.typbasetype"
            " WHERE chain.typtype = 'd')"
            " SELECT oid, typtype::text, typcategory::text, typname FROM chain"
            " WHERE typtype <> 'd'",
            column.type_oid,
        )
        assert base is not None, "every type chain ends in a type that is not a domain"
        if base["typtype"] == "e":
            label: str = await self.connection.fetchval(
                "SELECT enumlabel FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder LIMIT 1",
                base["oid"],
            )
            return label
        if base["typcategory"] == "S":
            listed = await self._listed_by_check(oid, column.name)
            text = listed or f"{column.name}-{uuid.uuid4().hex[:8]}"
            return text[: column.type_modifier - 4] if column.type_modifier > 4 else text
        if base["typname"] == "uuid":
            return str(uuid.uuid4())
        if unique and base["typcategory"] == "N":
            return str(random.randint(10_000, 32_767))  # within smallint too
        value = _VALUE_BY_TYPE.get(base["typname"], _VALUE_BY_CATEGORY.get(base["typcategory"]))
        if value is None:
            raise self._refusal(table, f"column {column.name} has type {base['typname']}")
        return value

    async def _listed_by_check(self, oid: int, column: str) -> str | None:
        """The first value a one-column CHECK lists (`status IN ('open', 'paid')`), if any."""
        definitions = await self.connection.fetch(
            "SELECT pg_get_constraintdef(c.oid) AS definition FROM pg_constraint AS c"
            " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " WHERE c.conrelid = $1 AND c.contype = 'c' AND cardinality(c.conkey) = 1"
            " AND a.attname = $2",
            oid,
            column,
        )
        for row in definitions:
            listed = row["definition"].partition("= ANY (ARRAY[")[2]
            if literal := _TEXT_LITERAL.search(listed):
                return literal.group(1).replace("''", "'")
        return None

    def _refusal(self, table: str, why: str) -> RowNotBuilt:
        return RowNotBuilt(f"cannot build a row of {table}: {why}; {self.remedy}")


def _paths(fill: Sequence[str], columns: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The table's own columns `fill` names (a path's first column among them), and what each
    path fills in the row its first column references: {fk_column: [column, ...]}. A name that
    is a column is that column; another with a dot is a path, split at its first dot."""
    own: list[str] = []
    through: dict[str, list[str]] = {}
    for name in fill:
        head, dot, rest = name.partition(".")
        if name in columns or not dot:
            own.append(name)
        else:
            own.append(head)
            through.setdefault(head, []).append(rest)
    return own, through


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
