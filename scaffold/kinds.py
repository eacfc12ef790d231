"""What values a field of an events file holds, as pydantic validates them: its value kind.

`scaffold check --against` compares kinds, not the TypeScript types the generator writes: a
channel's readers are the TypeScript client and Python consumers that validate payloads with the
channel's pydantic models (`fastapi_pg_sse.consumer`), and a kind says both what the JSON holds
and what pydantic accepts (`int` and `float` are both a TypeScript `number`, but a model with an
`int` field refuses `1.5`).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Shape = Literal[
    "scalar", "none", "any", "literal", "list", "tuple", "dict", "model", "union", "opaque"
]

INTEGERS = frozenset(
    {
        "int", "StrictInt", "PositiveInt", "NegativeInt", "NonNegativeInt", "NonPositiveInt",
    }
)  # fmt: skip
STRINGS = frozenset(
    {
        "str", "StrictStr", "bytes", "UUID", "UUID1", "UUID3", "UUID4", "UUID5", "datetime",
        "date", "time", "timedelta", "AwareDatetime", "NaiveDatetime", "PastDate", "FutureDate",
        "PastDatetime", "FutureDatetime", "Decimal", "EmailStr", "NameEmail", "AnyUrl",
        "AnyHttpUrl", "HttpUrl", "IPv4Address", "IPv6Address", "IPvAnyAddress", "Path",
        "SecretStr",
    }
)  # fmt: skip
"""The scalars JSON writes as strings."""
FLOATS = frozenset(
    {
        "float", "StrictFloat", "PositiveFloat", "NegativeFloat", "NonNegativeFloat",
        "NonPositiveFloat", "FiniteFloat",
    }
)  # fmt: skip
CONSTRAINTS = frozenset(
    {
        "gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern", "strict",
        "allow_inf_nan", "max_digits", "decimal_places",
    }
)  # fmt: skip
"""The keywords of `Field(...)` that change what values a field accepts."""


@dataclass(frozen=True)
class Kind:
    """The values of a field: a scalar (`int`, `datetime`, ...), `None`, anything, a literal, a
    list, a tuple, a mapping, a model of the file, a union, or a type the file does not show."""

    shape: Shape
    name: str = ""
    """A scalar's pydantic name; a model's class name; the annotation of an opaque type."""
    args: tuple["Kind", ...] = ()
    """A list's element, a tuple's items, a mapping's key and value, a union's members."""
    values: tuple[str, ...] = ()
    """A literal's values, as JSON (`"a"`, `1`, `true`)."""
    constraints: tuple[str, ...] = ()
    """What narrows the values (`ge=0`, an `Annotated` validator), sorted."""

    def constrained(self, constraints: tuple[str, ...]) -> "Kind":
        merged = tuple(sorted({*self.constraints, *constraints}))
        return Kind(self.shape, self.name, self.args, self.values, merged)


ANY = Kind("any")
NONE = Kind("none")


def union(members: list[Kind]) -> Kind:
    """The union of `members`, nested unions flattened, each member once; `Any` absorbs it."""
    flat: list[Kind] = []
    for member in members:
        for kind in member.args if member.shape == "union" else (member,):
            if kind not in flat:
                flat.append(kind)
    if ANY in flat:
        return ANY
    return flat[0] if len(flat) == 1 else Kind("union", args=tuple(flat))


ModelFields = Callable[[str], Mapping[str, tuple[Kind, bool]]]
"""A model's fields by wire name: each one's kind, and whether it has a default."""


class Reading:
    """Whether readers whose models are `reader`'s read every value of `writer`'s models."""

    def __init__(self, reader: ModelFields, writer: ModelFields) -> None:
        self._reader, self._writer = reader, writer

    def accepts(
        self, reader: Kind, value: Kind, assumed: frozenset[tuple[str, str]] = frozenset()
    ) -> bool:
        """Whether a reader that validates with `reader` accepts every value of `value`, read
        from the JSON the writer sends (TypeScript reads the same JSON types)."""
        if reader == ANY:
            return True
        if value.shape == "union":
            return all(self.accepts(reader, member, assumed) for member in value.args)
        if reader.shape == "union":
            return any(self.accepts(member, value, assumed) for member in reader.args)
        if reader.constraints and reader.constraints != value.constraints:
            return False
        return self._accepts_shape(reader, value, assumed)

    def _accepts_shape(
        self, reader: Kind, value: Kind, assumed: frozenset[tuple[str, str]]
    ) -> bool:
        """`accepts`, once unions are taken apart and the reader's constraints, if any, are
        those of `value`."""
        match reader.shape:
            case "literal":
                return value.shape == "literal" and set(value.values) <= set(reader.values)
            case "list":
                if value.shape == "list":
                    return self.accepts(reader.args[0], value.args[0], assumed)
                return value.shape == "tuple" and all(
                    self.accepts(reader.args[0], item, assumed) for item in value.args
                )
            case "tuple" | "dict":
                return (
                    value.shape == reader.shape
                    and len(value.args) == len(reader.args)
                    and all(
                        self.accepts(r, v, assumed)
                        for r, v in zip(reader.args, value.args, strict=True)
                    )
                )
            case "model":
                if value.shape != "model":
                    return False
                if (reader.name, value.name) in assumed:  # a model that holds itself
                    return True
                return self._model_accepts(
                    reader.name, value.name, assumed | {(reader.name, value.name)}
                )
            case "scalar":
                return value == reader or _scalar_accepts(reader.name, value)
            case _:  # None, or an opaque type: only itself
                return value == reader

    def _model_accepts(self, reader: str, value: str, assumed: frozenset[tuple[str, str]]) -> bool:
        """Each field the reader's model declares is there, of a kind it accepts, or has a
        default; fields it does not declare are ignored."""
        written = self._writer(value)
        for name, (kind, has_default) in self._reader(reader).items():
            found = written.get(name)
            if found is None:
                if not has_default:
                    return False
            elif not self.accepts(kind, found[0], assumed):
                return False
        return True


def _scalar_accepts(reader: str, value: Kind) -> bool:
    """Whether the scalar `reader` (unconstrained) takes every value of another kind: a float
    takes integers, a string any value JSON writes as a string, an integer or a float narrower
    ones of its kind, and each its literals."""
    if value.shape == "literal":
        json_types = {_json_type(literal) for literal in value.values}
        if reader == "float":
            return json_types <= {"integer", "number"}
        wanted = {"str": "string", "bool": "boolean", "int": "integer"}.get(reader)
        return json_types == {wanted}
    if value.shape != "scalar":
        return False
    if reader == "float":
        return value.name in INTEGERS or value.name in FLOATS
    if reader == "int":
        return value.name in INTEGERS
    if reader == "str":
        return value.name in STRINGS
    return False


def _json_type(literal: str) -> str:
    if literal.startswith('"'):
        return "string"
    if literal in ("true", "false"):
        return "boolean"
    if literal == "null":
        return "null"
    return "integer" if literal.lstrip("-").isdigit() else "number"


def render(kind: Kind, fields: ModelFields, seen: frozenset[str] = frozenset()) -> str:
    """`kind` as Python writes the annotation, a model as the JSON object it is on the wire
    (`{sku: str, qty: int}`): its class name never reaches a reader."""
    inner = _render(kind, fields, seen)
    if kind.constraints:
        return f"Annotated[{inner}, {', '.join(kind.constraints)}]"
    return inner


def _render(kind: Kind, fields: ModelFields, seen: frozenset[str]) -> str:
    def each(kinds: tuple[Kind, ...]) -> str:
        return ", ".join(render(k, fields, seen) for k in kinds)

    match kind.shape:
        case "none":
            return "None"
        case "any":
            return "Any"
        case "literal":
            return f"Literal[{', '.join(kind.values)}]"
        case "list":
            return f"list[{each(kind.args)}]"
        case "tuple":
            return f"tuple[{each(kind.args)}]"
        case "dict":
            return f"dict[{each(kind.args)}]"
        case "union":
            return " | ".join(render(member, fields, seen) for member in kind.args)
        case "model":
            if kind.name in seen:
                return "{...}"
            inside = seen | {kind.name}
            members = (
                f"{name}: {render(field, fields, inside)}"
                for name, (field, _) in fields(kind.name).items()
            )
            return "{" + ", ".join(members) + "}"
        case _:
            return kind.name
