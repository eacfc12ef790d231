"""A channel's events file, read with `ast` (never imported), as TypeScript types.

Each pydantic model of the file (a `ChannelEvent` or `BaseModel` subclass, directly or through
another model of the file) becomes an interface with every field its JSON has: the channel sends
`event.model_dump(mode="json")`, which includes fields left at their default, so every property
is required. A model extends the interface of its base in the file when it keeps the base's
fields as they are; otherwise its interface lists them all, a base's first as pydantic orders
them. A model with `extra="allow"` gets an index signature. Annotations map as pydantic's JSON
mode writes values: Decimal, UUID and dates are strings. What cannot be told from the file
alone (a class imported from elsewhere, a generic) is `unknown`: the client must narrow it.
"""

import ast
import inspect
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from scaffold.errors import BadInput

_MODEL_ROOTS = frozenset({"BaseModel", "ChannelEvent"})
_ENUM_ROOTS = frozenset({"Enum", "StrEnum", "IntEnum"})
_STRINGS = frozenset(
    {
        "str", "StrictStr", "bytes", "UUID", "UUID1", "UUID3", "UUID4", "UUID5", "datetime",
        "date", "time", "timedelta", "AwareDatetime", "NaiveDatetime", "PastDate", "FutureDate",
        "PastDatetime", "FutureDatetime", "Decimal", "EmailStr", "NameEmail", "AnyUrl",
        "AnyHttpUrl", "HttpUrl", "IPv4Address", "IPv6Address", "IPvAnyAddress", "Path",
        "SecretStr",
    }
)  # fmt: skip
_NUMBERS = frozenset(
    {
        "int", "float", "StrictInt", "StrictFloat", "PositiveInt", "NegativeInt",
        "NonNegativeInt", "NonPositiveInt", "PositiveFloat", "NegativeFloat", "NonNegativeFloat",
        "NonPositiveFloat", "FiniteFloat",
    }
)  # fmt: skip
_BOOLEANS = frozenset({"bool", "StrictBool"})
_UNKNOWN = frozenset({"Any", "JsonValue", "object"})
_ARRAYS = frozenset(
    {
        "list", "List", "set", "Set", "frozenset", "FrozenSet", "Sequence", "MutableSequence",
        "AbstractSet", "MutableSet", "Collection", "Iterable", "deque", "Deque",
    }
)  # fmt: skip
_TUPLES = frozenset({"tuple", "Tuple"})
_MAPPINGS = frozenset(
    {"dict", "Dict", "Mapping", "MutableMapping", "DefaultDict", "defaultdict", "OrderedDict"}
)
_UNIONS = frozenset({"Union", "Optional"})
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class Property:
    """One property of an interface."""

    name: str
    type: str
    doc: str | None = None


@dataclass(frozen=True)
class Interface:
    """The JSON shape of one model of the events file."""

    name: str
    """The model's class name, or the name `renames` gives it."""
    properties: tuple[Property, ...]
    """Its properties; with `extends`, those it adds to its base's."""
    extra_allowed: bool
    event_type: str | None
    """The `event_type` of a concrete event; None for an abstract base or a nested model."""
    doc: str | None = None
    extends: str | None = None
    """The interface of its one base in the file, when it keeps all of that base's properties
    as they are (a trigger's events and their row); None: every property is listed."""


@dataclass(frozen=True)
class ChannelEvents:
    """What one events file says about its channel: its models, and the events it declares."""

    interfaces: tuple[Interface, ...]
    """Every model of the file, in file order; property types name other models by class name."""
    events: tuple[Interface, ...]
    """The members of the channel's event alias, in the order it lists them."""


def read_channel_events(
    source: str, filename: str, alias: str, renames: Mapping[str, str] | None = None
) -> ChannelEvents:
    """The models of an events file and the events its `alias` (e.g. `StockEvent`) lists.

    An interface is named after its class, or as `renames` says (to keep names of several
    channels apart), and so are the properties whose type is that model. Raise `BadInput`,
    naming the file, when it does not parse or does not declare the events as the notify
    service imports them.
    """
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        raise BadInput(
            f"{filename}:{error.lineno}: {error.msg}; scaffold reads the channel's events from"
            " this file to write its TypeScript types: fix it, then run the command again"
        ) from error
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    enums = _enums(classes)
    models = _models(classes)
    reader = _ModelReader(classes, models, enums, renames or {})
    interfaces = {name: reader.interface(name) for name in models}
    members = _alias_members(tree, alias, filename)
    events = []
    for member in members:
        interface = interfaces.get(member)
        if interface is None or interface.event_type is None:
            raise BadInput(
                f"{filename}: {alias} lists {member}, which is not a ChannelEvent class of this"
                " file with an event_type: scaffold reads the events from this file alone"
            )
        events.append(interface)
    return ChannelEvents(tuple(interfaces.values()), tuple(events))


def property_name(name: str) -> str:
    """A property or event name as TypeScript writes it: bare when it can be, else quoted."""
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def doc_comment(doc: str, indent: str = "") -> str:
    """`doc` as a JSDoc comment, one `*` line per line of text."""
    lines = inspect.cleandoc(doc).replace("*/", "*\\/").split("\n")
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */"
    body = "\n".join(f"{indent} *{' ' if line else ''}{line}" for line in lines)
    return f"{indent}/**\n{body}\n{indent} */"


def _base_names(node: ast.ClassDef) -> list[str]:
    return [name for base in node.bases if (name := _name_of(base)) is not None]


def _name_of(node: ast.expr) -> str | None:
    """`Name` or the last part of `module.Name`; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _models(classes: Mapping[str, ast.ClassDef]) -> list[str]:
    """The classes that are pydantic models, through other classes of the file too."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, node in classes.items():
            if name not in found and any(
                base in _MODEL_ROOTS or base in found for base in _base_names(node)
            ):
                found.add(name)
                changed = True
    return [name for name in classes if name in found]


def _enums(classes: Mapping[str, ast.ClassDef]) -> dict[str, tuple[str, ...]]:
    """Each enum of the file as the union of its values' literals (`"red" | "blue"`)."""
    enums = {}
    for name, node in classes.items():
        if not any(base in _ENUM_ROOTS for base in _base_names(node)):
            continue
        values = [
            _literal(statement.value)
            for statement in node.body
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
        ]
        known = [value for value in values if value is not None]
        enums[name] = tuple(known) if known and len(known) == len(values) else ("unknown",)
    return enums


def _literal(node: ast.expr) -> str | None:
    """A `Literal[...]` member or an enum value as a TypeScript literal type."""
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    ):
        inner = _literal(node.operand)
        return f"-{inner}" if inner is not None and inner[0].isdigit() else None
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if value is None or isinstance(value, bool | str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return None


class _ModelReader:
    """Reads the fields of the file's models, following their bases in the file."""

    def __init__(
        self,
        classes: Mapping[str, ast.ClassDef],
        models: list[str],
        enums: Mapping[str, tuple[str, ...]],
        renames: Mapping[str, str],
    ) -> None:
        self._classes = classes
        self._models = set(models)
        self._enums = enums
        self._renames = renames

    def interface(self, name: str) -> Interface:
        properties, extra_allowed = self._properties(name), self._extra_allowed(name)
        bases, extends = self._file_bases(name), None
        if len(bases) == 1 and extra_allowed == self._extra_allowed(bases[0]):
            inherited = self._properties(bases[0])
            if all(properties.get(field) == value for field, value in inherited.items()):
                extends = self._renames.get(bases[0], bases[0])
                properties = {
                    key: value for key, value in properties.items() if key not in inherited
                }
        return Interface(
            name=self._renames.get(name, name),
            properties=tuple(properties.values()),
            extra_allowed=extra_allowed,
            event_type=self._event_type(name),
            doc=ast.get_docstring(self._classes[name]),
            extends=extends,
        )

    def _file_bases(self, name: str) -> list[str]:
        return [base for base in _base_names(self._classes[name]) if base in self._models]

    def _properties(self, name: str) -> dict[str, Property]:
        """The model's fields, bases' first as pydantic orders them; an override keeps its place."""
        properties: dict[str, Property] = {}
        for base in reversed(self._file_bases(name)):
            properties |= self._properties(base)
        for field, annotation, doc, excluded in _own_fields(self._classes[name]):
            if excluded:
                properties.pop(field, None)
            else:
                properties[field] = Property(field, self.ts_type(annotation), doc)
        return properties

    def _extra_allowed(self, name: str) -> bool:
        own = _own_extra(self._classes[name])
        if own is not None:
            return own
        return any(self._extra_allowed(base) for base in self._file_bases(name))

    def _event_type(self, name: str) -> str | None:
        for statement in self._classes[name].body:
            target, value = _assignment(statement)
            if target == "event_type" and isinstance(value, ast.Constant):
                return str(value.value) if isinstance(value.value, str) else None
        return next(
            (found for base in self._file_bases(name) if (found := self._event_type(base))),
            None,
        )

    def ts_type(self, node: ast.expr) -> str:
        """The TypeScript type of an annotation."""
        return " | ".join(self._members(node))

    def _members(self, node: ast.expr) -> tuple[str, ...]:
        """The members of the annotation's TypeScript union; one for a type that is no union."""
        if isinstance(node, ast.Constant):
            if node.value is None:
                return ("null",)
            if isinstance(node.value, str):  # a forward reference: "Item"
                try:
                    return self._members(ast.parse(node.value, mode="eval").body)
                except SyntaxError:
                    return ("unknown",)
            return ("unknown",)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _union([*self._members(node.left), *self._members(node.right)])
        if isinstance(node, ast.Subscript):
            return self._generic(node)
        name = _name_of(node)
        return ("unknown",) if name is None else self._named(name)

    def _named(self, name: str) -> tuple[str, ...]:
        if name in self._models:
            return (self._renames.get(name, name),)
        if name in self._enums:
            return self._enums[name]
        if name in _STRINGS:
            return ("string",)
        if name in _NUMBERS:
            return ("number",)
        if name in _BOOLEANS:
            return ("boolean",)
        if name in _ARRAYS or name in _TUPLES:
            return ("unknown[]",)
        if name in _MAPPINGS:
            return ("Record<string, unknown>",)
        return ("unknown",)  # Any, JsonValue, object, or a type scaffold cannot see from here

    def _generic(self, node: ast.Subscript) -> tuple[str, ...]:
        name = _name_of(node.value)
        arguments = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name == "Annotated":
            return self._members(arguments[0])
        if name == "Literal":
            return _union([_literal(argument) or "unknown" for argument in arguments])
        if name in _UNIONS:
            members = [member for argument in arguments for member in self._members(argument)]
            return _union([*members, "null"] if name == "Optional" else members)
        if name in _ARRAYS:
            return (self._array(arguments[0]),)
        if name in _TUPLES:
            if len(arguments) == 2 and _is_ellipsis(arguments[1]):
                return (self._array(arguments[0]),)
            if len(arguments) == 1 and isinstance(arguments[0], ast.Tuple):  # tuple[()]
                return ("[]",)
            return (f"[{', '.join(self.ts_type(argument) for argument in arguments)}]",)
        if name in _MAPPINGS:
            return (f"Record<string, {self.ts_type(arguments[-1])}>",)
        return ("unknown",)

    def _array(self, element: ast.expr) -> str:
        members = self._members(element)
        joined = " | ".join(members)
        return f"({joined})[]" if len(members) > 1 else f"{joined}[]"


def _own_fields(node: ast.ClassDef) -> Iterator[tuple[str, ast.expr, str | None, bool]]:
    """(name, annotation, docstring, excluded) of each field the class body declares, and of
    each `@computed_field` property, which model_dump includes too."""
    body = node.body
    for index, statement in enumerate(body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            if name.startswith("_") or name == "model_config" or _is_class_var(statement):
                continue
            following = body[index + 1] if index + 1 < len(body) else None
            yield name, statement.annotation, _docstring(following), _excluded(statement.value)
        elif (
            isinstance(statement, ast.FunctionDef)
            and statement.returns is not None
            and any(_name_of(_called(d)) == "computed_field" for d in statement.decorator_list)
        ):
            yield statement.name, statement.returns, ast.get_docstring(statement), False


def _called(node: ast.expr) -> ast.expr:
    return node.func if isinstance(node, ast.Call) else node


def _docstring(statement: ast.stmt | None) -> str | None:
    """The string under a field, which documents it (as an attribute docstring)."""
    if (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    ):
        return statement.value.value
    return None


def _is_class_var(statement: ast.AnnAssign) -> bool:
    annotation = statement.annotation
    return _name_of(_called_subscript(annotation)) == "ClassVar"


def _called_subscript(node: ast.expr) -> ast.expr:
    return node.value if isinstance(node, ast.Subscript) else node


def _excluded(value: ast.expr | None) -> bool:
    """Whether a field's default is `Field(..., exclude=True)`: model_dump leaves it out."""
    return (
        isinstance(value, ast.Call)
        and _name_of(value.func) == "Field"
        and any(
            keyword.arg == "exclude"
            and isinstance(keyword.value, ast.Constant)
            and keyword.value.value is True
            for keyword in value.keywords
        )
    )


def _own_extra(node: ast.ClassDef) -> bool | None:
    """Whether the class body or its keywords set `extra="allow"`; None if they say nothing."""
    for keyword in node.keywords:
        if keyword.arg == "extra":
            return _is_allow(keyword.value)
    for statement in node.body:
        target, value = _assignment(statement)
        if target != "model_config" or value is None:
            continue
        if isinstance(value, ast.Call):
            for keyword in value.keywords:
                if keyword.arg == "extra":
                    return _is_allow(keyword.value)
        if isinstance(value, ast.Dict):
            for key, item in zip(value.keys, value.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "extra":
                    return _is_allow(item)
    return None


def _is_allow(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == "allow"


def _assignment(statement: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """(name, value) of `name = value` or `name: T = value`; (None, None) otherwise."""
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value
    if (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
    ):
        return statement.targets[0].id, statement.value
    return None, None


def _alias_members(tree: ast.Module, alias: str, filename: str) -> list[str]:
    """The classes the module-level `alias` names: `A`, `A | B`, `Union[A, B]`; the last
    assignment wins, as at run time."""
    value: ast.expr | None = None
    for statement in tree.body:
        target, assigned = _assignment(statement)
        if target == alias:
            value = assigned
        type_alias = getattr(ast, "TypeAlias", None)  # `type X = ...`, Python 3.12+
        if (
            type_alias is not None
            and isinstance(statement, type_alias)
            and isinstance(statement.name, ast.Name)
            and statement.name.id == alias
        ):
            value = statement.value
    if value is None:
        raise BadInput(
            f"{filename} does not assign {alias}, the union of the channel's events its notify"
            f" service imports: add one, such as `{alias} = StockUpdated | StockRemoved`"
        )
    members = _union_members(value)
    if members is None:
        raise BadInput(
            f"{filename}: {alias} must name the event classes of the file, joined by `|`"
        )
    return members


def _union_members(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _union_members(node.left), _union_members(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Subscript) and _name_of(node.value) == "Union":
        elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        names = [_union_members(element) for element in elements]
        return None if any(n is None for n in names) else [m for n in names if n for m in n]
    name = _name_of(node)
    return None if name is None else [name]


def _is_ellipsis(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _union(members: list[str]) -> tuple[str, ...]:
    """A union's members, each once, in order; `unknown` absorbs the others."""
    unique = tuple(dict.fromkeys(members))
    return ("unknown",) if "unknown" in unique else unique
