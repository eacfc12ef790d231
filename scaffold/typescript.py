"""A channel's events file, read with `ast` (never imported), as TypeScript types.

Each pydantic model of the file (a `ChannelEvent` or `BaseModel` subclass, directly or through
another model of the file) becomes an interface with every field its JSON has: the channel sends
`event.model_dump(mode="json", by_alias=True)`, which includes fields left at their default, so
every property is required. A model extends the interface of its base in the file when it keeps
the base's fields as they are; otherwise its interface lists them all, a base's first as
pydantic orders them. A model with `extra="allow"` gets an index signature, and so does an
event whose base is not in the file (imported from another module): its other fields are
unknown. Annotations map as pydantic's JSON mode writes values: Decimal, UUID and dates are
strings. What cannot be told from the file alone (a field's class imported from elsewhere, a
generic) is `unknown`: the client must narrow it.

The channel dumps an event by alias, so a property is named as the field's wire name: its
`serialization_alias`, else its `alias`, else what the model's `alias_generator` makes of the
field's name (only pydantic's `to_camel`, `to_pascal` and `to_snake` can be followed from the
file), else the field's name.

Each property and interface also tells what `scaffold check --against` compares between two
versions of the file (`scaffold.breaking`), none of it part of the TypeScript shape: the line
that declares it, whether the field has a default, and every property of a model, inherited
ones included.
"""

import ast
import dataclasses
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from scaffold.errors import BadInput
from scaffold.kinds import ANY, CONSTRAINTS, FLOATS, INTEGERS, NONE, STRINGS, Kind, union
from scaffold.pydantic_aliases import ALIAS_GENERATORS

_MODEL_ROOTS = frozenset({"BaseModel", "ChannelEvent"})
_ENUM_ROOTS = frozenset({"Enum", "StrEnum", "IntEnum"})
_NUMBERS = INTEGERS | FLOATS
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
    optional: bool = dataclasses.field(default=False, compare=False)
    """Whether the field has a default, so that whoever constructs the event may leave it out
    (its JSON holds it all the same). Not part of the TypeScript shape: not compared."""
    line: int = dataclasses.field(default=0, compare=False)
    """The line of the file that declares the field (in a base, for an inherited one)."""
    kind: Kind = dataclasses.field(default=ANY, compare=False)
    """The values pydantic accepts for it (`scaffold.kinds`), which `check --against` compares."""


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
    outside_bases: tuple[str, ...] = ()
    """Its bases that are not classes of the file: they may add fields scaffold cannot see."""
    extends: str | None = None
    """The interface of its one base in the file, when it keeps all of that base's properties
    as they are (a trigger's events and their row); None: every property is listed."""
    wire: tuple[Property, ...] = dataclasses.field(default=(), compare=False)
    """Every property of its JSON, inherited ones included, whatever `extends` says."""
    line: int = dataclasses.field(default=0, compare=False)
    """The line of its `class` statement."""


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
            " this file: fix it, then run the command again"
        ) from error
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    members = _alias_members(tree, alias, filename)
    outside = _outside_bases(classes, members)
    enums = _enums(classes)
    models = _models(classes, outside)
    reader = _ModelReader(filename, _imports(tree), classes, models, enums, outside, renames or {})
    interfaces = {name: reader.interface(name) for name in models}
    events = []
    for member in members:
        interface = interfaces.get(member)
        if interface is None:
            raise BadInput(
                f"{filename}: {alias} lists {member}, which is not a ChannelEvent class of this"
                " file: scaffold reads the events from this file alone"
            )
        if interface.event_type is None:
            raise BadInput(
                f"{filename}: {alias} lists {member}, whose event_type is not in this file: give"
                f' {member} (or a base of it in this file) `event_type: ClassVar[str] = "..."`'
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


def _outside_bases(
    classes: Mapping[str, ast.ClassDef], events: list[str]
) -> dict[str, tuple[str, ...]]:
    """The bases that are not classes of the file (but for pydantic's and the runtime's), of
    each listed event and of its bases in the file: they are models, imported from elsewhere."""
    found: dict[str, tuple[str, ...]] = {}
    pending, seen = [event for event in events if event in classes], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        bases = _base_names(classes[name])
        outside = tuple(base for base in bases if base not in classes and base not in _MODEL_ROOTS)
        if outside:
            found[name] = outside
        pending.extend(base for base in bases if base in classes)
    return found


def _models(classes: Mapping[str, ast.ClassDef], known: Iterable[str]) -> list[str]:
    """The classes that are pydantic models: the `known` ones, those with a pydantic or runtime
    base, and those with a base among them."""
    found: set[str] = set(known)
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
        # Every member: one whose value is not a literal (`auto()`) makes the union unknown.
        values = [
            _literal(statement.value)
            for statement in node.body
            if isinstance(statement, ast.Assign)
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


@dataclass(frozen=True)
class _Field:
    """A field as a class body declares it."""

    name: str
    annotation: ast.expr
    doc: str | None
    options: Mapping[str, ast.expr]
    """The keywords of its `Field(...)` (or `computed_field(...)`), the last given winning."""
    owner: str
    """The class that declares it."""
    line: int
    """The line of its declaration."""
    has_default: bool
    """Whether the event can be constructed without it: it has a default, or is computed."""
    alias: str | None = None
    """Its name on the wire, if not its own."""
    generated: bool = True
    """Whether an alias generator names it (again): it has no alias of its own."""


class _ModelReader:
    """Reads the fields of the file's models, following their bases in the file."""

    def __init__(
        self,
        filename: str,
        imports: Mapping[str, str],
        classes: Mapping[str, ast.ClassDef],
        models: list[str],
        enums: Mapping[str, tuple[str, ...]],
        outside: Mapping[str, tuple[str, ...]],
        renames: Mapping[str, str],
    ) -> None:
        self._filename = filename
        self._imports = imports
        self._classes = classes
        self._models = set(models)
        self._enums = enums
        self._outside = outside
        self._renames = renames

    def interface(self, name: str) -> Interface:
        properties, extra_allowed = self._properties(name), self._extra_allowed(name)
        wire = tuple(properties.values())
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
            outside_bases=self._outside.get(name, ()),
            extends=extends,
            wire=wire,
            line=self._classes[name].lineno,
        )

    def _file_bases(self, name: str) -> list[str]:
        return [base for base in _base_names(self._classes[name]) if base in self._models]

    def _properties(self, name: str) -> dict[str, Property]:
        """The model's properties by field name, named as the channel sends them."""
        return {
            key: Property(
                field.alias or field.name,
                self.ts_type(field.annotation),
                field.doc,
                optional=field.has_default,
                line=field.line,
                kind=self.kind(field.annotation).constrained(_constraints(field.options)),
            )
            for key, field in self._fields(name).items()
        }

    def _fields(self, name: str) -> dict[str, _Field]:
        """The model's fields, bases' first as pydantic orders them; an override keeps its place.

        Each is named as pydantic names it: the class's alias generator renames the fields
        that have no alias of their own, inherited ones too; a field with only a
        `validation_alias` takes the first generator's name and keeps it.
        """
        fields: dict[str, _Field] = {}
        for base in reversed(self._file_bases(name)):
            fields |= self._fields(base)
        for field in _own_fields(self._classes[name]):
            if _is_true(field.options.get("exclude")):  # model_dump leaves it out
                fields.pop(field.name, None)
            else:
                fields[field.name] = self._with_alias(field)
        generator = self._alias_generator(name)
        if generator is None:
            return fields
        return {
            key: replace(field, alias=generator(field.name))
            if field.generated or field.alias is None
            else field
            for key, field in fields.items()
        }

    def _with_alias(self, field: _Field) -> _Field:
        """The field with the alias its options give it (`serialization_alias`, else `alias`)."""
        given = [option for option in ("serialization_alias", "alias") if option in field.options]
        for option in given:
            value = field.options[option]
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return replace(field, alias=value.value, generated=False)
            raise BadInput(
                f"{self._filename}:{value.lineno}: {option} of {field.owner}.{field.name} is not"
                " a string scaffold can read from the file: write the alias itself, such as"
                f' {option}="{field.name}"'
            )
        has_validation_alias = "validation_alias" in field.options
        return replace(field, generated=not has_validation_alias)

    def _alias_generator(self, name: str) -> Callable[[str], str] | None:
        """The `alias_generator` the model's config sets, or inherits from a base in the file
        (the first base's first, as pydantic merges them)."""
        value = _config(self._classes[name], "alias_generator")
        if value is None:
            return next(
                (
                    found
                    for base in self._file_bases(name)
                    if (found := self._alias_generator(base))
                ),
                None,
            )
        if isinstance(value, ast.Constant) and value.value is None:
            return None
        generator = ALIAS_GENERATORS.get(_qualified(value, self._imports) or "")
        if generator is None:
            raise BadInput(
                f"{self._filename}:{value.lineno}: the alias_generator of {name} names fields in"
                " a way scaffold cannot tell from the file alone (it follows to_camel, to_pascal"
                " and to_snake of pydantic.alias_generators): use one of those, or give each"
                " field its name with Field(serialization_alias=...)"
            )
        return generator

    def _extra_allowed(self, name: str) -> bool:
        """Whether the JSON may hold keys besides the fields: `extra="allow"`, or a base the file
        does not show."""
        if name in self._outside:
            return True
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
        if name in STRINGS:
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
            return (f"[{', '.join(self.ts_type(argument) for argument in arguments)}]",)
        if name in _MAPPINGS:
            return (f"Record<string, {self.ts_type(arguments[-1])}>",)
        return ("unknown",)

    def kind(self, node: ast.expr) -> Kind:
        """The value kind of an annotation: what pydantic accepts, as `scaffold.kinds` says."""
        if isinstance(node, ast.Constant):
            if node.value is None:
                return NONE
            if isinstance(node.value, str):  # a forward reference: "Item"
                try:
                    return self.kind(ast.parse(node.value, mode="eval").body)
                except SyntaxError:
                    return Kind("opaque", node.value)
            return _opaque(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return union([self.kind(node.left), self.kind(node.right)])
        if isinstance(node, ast.Subscript):
            return self._generic_kind(node)
        name = _name_of(node)
        if name is None:
            return _opaque(node)
        if name in self._models:
            return Kind("model", self._renames.get(name, name))
        if name in self._enums:
            values = self._enums[name]
            return (
                Kind("opaque", name) if values == ("unknown",) else Kind("literal", values=values)
            )
        if name in STRINGS or name in _NUMBERS or name in _BOOLEANS:
            return Kind("scalar", name)
        if name in _UNKNOWN:
            return ANY
        if name in _ARRAYS or name in _TUPLES:
            return Kind("list", args=(ANY,))
        if name in _MAPPINGS:  # JSON's keys are strings
            return Kind("dict", args=(Kind("scalar", "str"), ANY))
        return _opaque(node)  # a type imported from elsewhere: compared by its annotation

    def _generic_kind(self, node: ast.Subscript) -> Kind:
        name = _name_of(node.value)
        arguments = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name == "Annotated":
            return self.kind(arguments[0]).constrained(_metadata_constraints(arguments[1:]))
        if name == "Literal":
            values = [_literal(argument) for argument in arguments]
            known = [value for value in values if value is not None]
            if len(known) < len(values):
                return _opaque(node)
            return Kind("literal", values=tuple(dict.fromkeys(known)))
        if name in _UNIONS:
            members = [self.kind(argument) for argument in arguments]
            return union([*members, NONE] if name == "Optional" else members)
        if name in _ARRAYS or (
            name in _TUPLES and len(arguments) == 2 and _is_ellipsis(arguments[1])
        ):
            return Kind("list", args=(self.kind(arguments[0]),))
        if name in _TUPLES:
            return Kind("tuple", args=tuple(self.kind(argument) for argument in arguments))
        if name in _MAPPINGS and len(arguments) == 2:
            return Kind("dict", args=(self.kind(arguments[0]), self.kind(arguments[1])))
        return _opaque(node)

    def _array(self, element: ast.expr) -> str:
        members = self._members(element)
        joined = " | ".join(members)
        return f"({joined})[]" if len(members) > 1 else f"{joined}[]"


def _own_fields(node: ast.ClassDef) -> Iterator[_Field]:
    """Each field the class body declares, and each `@computed_field` property, which
    model_dump includes too."""
    body = node.body
    for index, statement in enumerate(body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            if name.startswith("_") or name == "model_config" or _is_class_var(statement):
                continue
            following = body[index + 1] if index + 1 < len(body) else None
            calls = [*_annotated_metadata(statement.annotation), statement.value]
            options = _keywords(calls, "Field")
            default = _has_default(statement.value, calls)
            doc = _docstring(following)
            yield _Field(
                name, statement.annotation, doc, options, node.name, statement.lineno, default
            )
        elif isinstance(statement, ast.FunctionDef) and statement.returns is not None:
            decorators = statement.decorator_list
            if any(_name_of(_called(decorator)) == "computed_field" for decorator in decorators):
                doc = ast.get_docstring(statement)
                options = _keywords(decorators, "computed_field")
                returns = statement.returns
                yield _Field(
                    statement.name, returns, doc, options, node.name, statement.lineno, True
                )


def _opaque(node: ast.expr) -> Kind:
    """A type the file does not show (imported, or a call such as `conint(ge=0)`): compared by
    its annotation's text."""
    return Kind("opaque", ast.unparse(node))


def _constraints(options: Mapping[str, ast.expr]) -> tuple[str, ...]:
    """The keywords of a `Field(...)` that narrow its values: `("ge=0",)`."""
    return tuple(f"{key}={ast.unparse(options[key])}" for key in sorted(CONSTRAINTS & set(options)))


def _metadata_constraints(metadata: Sequence[ast.expr]) -> tuple[str, ...]:
    """What `Annotated` metadata narrows: a `Field`'s constraints, any other metadata (a
    validator, `annotated_types.Ge(0)`) as its text."""
    found: list[str] = []
    for node in metadata:
        if isinstance(node, ast.Call) and _name_of(node.func) == "Field":
            found += _constraints({k.arg: k.value for k in node.keywords if k.arg is not None})
        else:
            found.append(ast.unparse(node))
    return tuple(found)


def _has_default(value: ast.expr | None, calls: Sequence[ast.expr | None]) -> bool:
    """Whether a field declared `= value` (with `Annotated` metadata among `calls`) has a default:
    a value other than `Field(...)`, or a `Field` with a default or a default factory."""
    if value is not None and not (isinstance(value, ast.Call) and _name_of(value.func) == "Field"):
        return True
    for call in calls:
        if not (isinstance(call, ast.Call) and _name_of(call.func) == "Field"):
            continue
        if call.args and not _is_ellipsis(call.args[0]):
            return True
        options = {keyword.arg: keyword.value for keyword in call.keywords}
        if "default_factory" in options or (
            "default" in options and not _is_ellipsis(options["default"])
        ):
            return True
    return False


def _annotated_metadata(annotation: ast.expr) -> list[ast.expr]:
    """What `Annotated[T, ...]` adds to T; none for another annotation."""
    if (
        isinstance(annotation, ast.Subscript)
        and _name_of(annotation.value) == "Annotated"
        and isinstance(annotation.slice, ast.Tuple)
    ):
        return list(annotation.slice.elts[1:])
    return []


def _keywords(nodes: Sequence[ast.expr | None], function: str) -> dict[str, ast.expr]:
    """The keyword arguments of the calls of `function` among `nodes`, a later call's winning."""
    return {
        keyword.arg: keyword.value
        for node in nodes
        if isinstance(node, ast.Call) and _name_of(node.func) == function
        for keyword in node.keywords
        if keyword.arg is not None
    }


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


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


def _own_extra(node: ast.ClassDef) -> bool | None:
    """Whether the class sets `extra="allow"`; None if it says nothing."""
    value = _config(node, "extra")
    return None if value is None else _is_allow(value)


def _config(node: ast.ClassDef, key: str) -> ast.expr | None:
    """What the class's own config sets `key` to, in its keywords (`class A(BaseModel,
    extra="allow")`) or its `model_config` (`ConfigDict(...)` or a dict); None if neither does."""
    for keyword in node.keywords:
        if keyword.arg == key:
            return keyword.value
    for statement in node.body:
        target, value = _assignment(statement)
        if target != "model_config" or value is None:
            continue
        if isinstance(value, ast.Call):
            for keyword in value.keywords:
                if keyword.arg == key:
                    return keyword.value
        if isinstance(value, ast.Dict):
            for dict_key, item in zip(value.keys, value.values, strict=True):
                if isinstance(dict_key, ast.Constant) and dict_key.value == key:
                    return item
    return None


def _imports(tree: ast.Module) -> dict[str, str]:
    """The qualified name each absolute import of the module binds: `{"to_camel":
    "pydantic.alias_generators.to_camel", "pydantic": "pydantic"}`."""
    names: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            for alias in statement.names:
                names[alias.asname or alias.name] = f"{statement.module}.{alias.name}"
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
    return names


def _qualified(node: ast.expr, imports: Mapping[str, str]) -> str | None:
    """The qualified name of `name` or `name.attribute...` as the module's imports bind it."""
    if isinstance(node, ast.Name):
        return imports.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _qualified(node.value, imports)
        return None if owner is None else f"{owner}.{node.attr}"
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
