"""Validate the channel and module arguments and derive every name the templates need.

This is the tool's only inflection code: templates never re-derive names, so one set of rules
decides what a channel is called in Python, in URLs and in PostgreSQL, and every name it hands
out is already known to be valid there.
"""

import builtins
import keyword
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from scaffold.errors import BadInput

PG_MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names.
CHANNEL_NAME_MAX_BYTES = 53
"""The runtime's limit on a channel's name (`fastapi_pg_sse.Channel`): the triggers it makes for
a channel, `<name>_on_insert` and so on, must fit in PostgreSQL's 63 bytes. The one limit on the
length of names: Python identifiers have none, and the file names a channel gets stay far below
the 255 bytes of file systems."""
PG_MAX_PAYLOAD_COLUMNS = 50  # FUNC_MAX_ARGS is 100: a name and a value per column.

# Key words PostgreSQL 17 lists as "reserved" or "reserved (can be function or type)" (kwlist.h).
# Neither kind can name a table, column or channel unless quoted, and generated SQL never quotes.
PG_RESERVED_KEYWORDS = frozenset(
    {
        # reserved
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
        "case", "cast", "check", "collate", "column", "constraint", "create", "current_catalog",
        "current_date", "current_role", "current_time", "current_timestamp", "current_user",
        "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false",
        "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially",
        "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
        "null", "offset", "on", "only", "or", "order", "placing", "primary", "references",
        "returning", "select", "session_user", "some", "symmetric", "system_user", "table",
        "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when",
        "where", "window", "with",
        # reserved (can be function or type)
        "authorization", "binary", "collation", "concurrently", "cross", "current_schema",
        "freeze", "full", "ilike", "inner", "is", "isnull", "join", "left", "like", "natural",
        "notnull", "outer", "overlaps", "right", "similar", "tablesample", "verbose",
    }
)  # fmt: skip

_PYTHON_KEYWORDS = frozenset([*keyword.kwlist, *keyword.softkwlist])
_PYTHON_BUILTINS = frozenset(dir(builtins))
_ALLOWED_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
# A word is an uppercase run not followed by a lowercase letter (an acronym: "HTTP" in "HTTPLog")
# or an optionally capitalised lowercase run; trailing digits stay with it ("Http2Log").
_WORD = re.compile(r"[A-Z]+(?![a-z])[0-9]*|[A-Z]?[a-z]+[0-9]*")
_PG_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_EXAMPLES = {"channel": "'Stock' or 'StockLevel'", "module": "'inventory' or 'warehouse_ops'"}


@dataclass(frozen=True)
class ChannelNames:
    """Every spelling of one channel that the templates use."""

    channel_class: str  # PascalCase class stem: "Stock", "StockLevel", "HTTPLog"
    channel_snake: str  # "stock", "stock_level", "http_log"
    channel_kebab: str  # "stock", "stock-level", "http-log"
    channel_title: str  # human words for docstrings: "stock", "stock level", "HTTP log"
    module_package: str  # Python package segment: "inventory", "warehouse_ops"
    module_url: str  # URL segment: "inventory", "warehouse-ops"
    channel_name: str  # the runtime's: Channel("inventory_stock"), its events' channel column
    route_prefix: str  # the SSE endpoint is route_prefix + "/stream"


def channel_names(channel: str, module: str) -> ChannelNames:
    """Derive all names for `create-sse-channel <channel> in <module>`, or raise BadInput."""
    channel_words = _words(channel, "channel")
    module_words = _words(module, "module")
    channel_snake = "_".join(word.lower() for word in channel_words)
    module_package = "_".join(word.lower() for word in module_words)
    _check_python_name(channel, channel_snake, "channel")
    _check_python_name(module, module_package, "module")

    channel_kebab = channel_snake.replace("_", "-")
    module_url = module_package.replace("_", "-")
    channel_name = f"{module_package}_{channel_snake}"
    size = len(channel_name.encode())
    if size > CHANNEL_NAME_MAX_BYTES:
        raise BadInput(
            f"the channel's name {channel_name!r}, from channel {channel!r} in module {module!r},"
            f" is {size} bytes, over the runtime's {CHANNEL_NAME_MAX_BYTES} (its triggers are named"
            " <name>_on_insert, and PostgreSQL's names stop at 63 bytes); use a shorter channel"
            " or module name"
        )
    return ChannelNames(
        # An all-caps word (an acronym) keeps its case; any other word is capitalised.
        channel_class="".join(w if w.isupper() else w.capitalize() for w in channel_words),
        channel_snake=channel_snake,
        channel_kebab=channel_kebab,
        channel_title=" ".join(w if w.isupper() else w.lower() for w in channel_words),
        module_package=module_package,
        module_url=module_url,
        channel_name=channel_name,
        route_prefix=f"/{module_url}/events/{channel_kebab}",
    )


def sql_identifier(name: str, what: str) -> str:
    """Return a user-given SQL identifier (e.g. a --table value) if generated SQL can use it."""
    subject = f"{what} {name!r}"
    if not _PG_IDENTIFIER.fullmatch(name):
        raise BadInput(
            f"{subject} is not a plain lowercase PostgreSQL identifier; use lowercase ASCII "
            "letters, digits and '_', not starting with a digit (e.g. 'baskets')"
        )
    problem = _pg_identifier_problem(name)
    if problem:
        raise BadInput(f"{subject} {problem}; use a name that needs no quoting in SQL")
    return name


def column_path(value: str, what: str) -> str:
    """A trigger's user or group column (`user_id`), or the way to it through a foreign key of the
    changed row (`article_id.author_id`: `author_id` of the row that `article_id` references)."""
    parts = value.split(".")
    if len(parts) > 2:
        raise BadInput(
            f"{what} {value!r} follows more than one foreign key: name a column of the row, or"
            " <foreign key column>.<column> of the row it references"
        )
    return ".".join(sql_identifier(part, what) for part in parts)


def table_class(table: str) -> str:
    """The class stem of a table's rows, `Baskets` for `baskets`, `OrderLines` for
    `order_lines`: the table's words as written, capitalised; `Table2024` for `_2024`."""
    stem = "".join(word[:1].upper() + word[1:] for word in table.split("_"))
    return stem if stem[:1].isalpha() else f"Table{stem}"


def payload_columns(columns: Sequence[str], what: str) -> tuple[str, ...]:
    """Return the columns a trigger's events carry (`--columns`) if generated SQL can name each
    one and pass them all to `jsonb_build_object`; refuse none, repeats and too many."""
    if not columns:
        raise BadInput(f"{what} is empty; name the columns each event carries, such as id,status")
    try:
        checked = tuple(sql_identifier(column, "column") for column in columns)
    except BadInput as error:
        raise BadInput(f"{what}: {error}") from error
    repeated = next((name for i, name in enumerate(checked) if name in checked[:i]), None)
    if repeated is not None:
        raise BadInput(f"{what} names the column {repeated!r} twice; list each column once")
    if len(checked) > PG_MAX_PAYLOAD_COLUMNS:
        raise BadInput(
            f"{what} names {len(checked)} columns; an event carries at most"
            f" {PG_MAX_PAYLOAD_COLUMNS} (jsonb_build_object takes a name and a value for each,"
            f" and PostgreSQL passes a function at most {2 * PG_MAX_PAYLOAD_COLUMNS} arguments)"
        )
    return checked


def _words(value: str, kind: str) -> list[str]:
    """Split a PascalCase, snake_case or kebab-case name into its words, or refuse it."""
    if not value.strip():
        raise _refusal(kind, value, "is empty")
    if "/" in value or "\\" in value or ".." in value:
        raise _refusal(kind, value, "must be a name, not a path")
    bad = next((char for char in value if char not in _ALLOWED_CHARS), None)
    if bad is not None:
        raise _refusal(
            kind, value, f"contains {bad!r}; only ASCII letters, digits, '_' and '-' are allowed"
        )
    if value[0] in "_-" or value[-1] in "_-":
        raise _refusal(kind, value, "must not start or end with '_' or '-'")
    if value[0].isdigit():
        raise _refusal(kind, value, "must start with a letter")
    if "_" in value and "-" in value:
        raise _refusal(kind, value, "mixes '-' and '_'; separate its words with only one of them")
    parts = re.split("[-_]", value)
    if "" in parts:
        raise _refusal(kind, value, "has a doubled separator")
    if any(part[0].isdigit() for part in parts):
        raise _refusal(kind, value, "has a word starting with a digit")
    return [word for part in parts for word in _WORD.findall(part)]


def _check_python_name(value: str, snake: str, kind: str) -> None:
    if snake in _PYTHON_KEYWORDS:
        raise _refusal(kind, value, f"becomes {snake!r}, which is a Python keyword")
    if snake in _PYTHON_BUILTINS:
        raise _refusal(kind, value, f"becomes {snake!r}, which shadows a Python builtin")


def _pg_identifier_problem(name: str) -> str | None:
    """Say why a lowercase identifier cannot appear unquoted in PostgreSQL, if it cannot."""
    size = len(name.encode())
    if size > PG_MAX_IDENTIFIER_BYTES:
        return f"is {size} bytes, over PostgreSQL's {PG_MAX_IDENTIFIER_BYTES}-byte identifier limit"
    if name in PG_RESERVED_KEYWORDS:
        return "is a reserved PostgreSQL key word, which generated SQL cannot use unquoted"
    return None


def _refusal(kind: str, value: str, problem: str) -> BadInput:
    return BadInput(f"{kind} name {value!r} {problem}; use a name like {_EXAMPLES[kind]}")


@dataclass(frozen=True)
class TypeScriptNames:
    """How the generated TypeScript client names one channel."""

    descriptor: str  # the channel's descriptor, for openStream: "inventoryStock"
    events: str  # its event map type: "InventoryStockEvents"
    prefix: str  # what its interfaces take when their class names clash: "InventoryStock"


def typescript_names(names: ChannelNames) -> TypeScriptNames:
    """The channel's TypeScript names, from its module's words and its class stem."""
    module = "".join(word.capitalize() for word in names.module_package.split("_"))
    prefix = f"{module}{names.channel_class}"
    return TypeScriptNames(prefix[0].lower() + prefix[1:], f"{prefix}Events", prefix)
