"""Validating an event's payload by the names the server writes: `Channel.emit` sends
`model_dump_json(by_alias=True)`, so each field goes by its serialization alias, while a model
validates by its validation alias (or name). A field with only `serialization_alias=` would
never be found; `alias=` and `alias_generator` set both and would be."""

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic_core import SchemaValidator

_FIELDS = frozenset({"model-field", "dataclass-field", "typed-dict-field"})
_CLASSES = frozenset({"model", "dataclass"})


@cache
def wire_validator(model: type[BaseModel]) -> SchemaValidator:
    """A validator of `model` (and the models and dataclasses it holds) that finds each field
    under its serialization alias, the name `model_dump_json(by_alias=True)` gives it; its own
    validators run as usual, and it returns instances of `model`."""
    schema = model.__pydantic_core_schema__
    complete = [cls for cls in _classes(schema, set()) if cls.__dict__.get("__pydantic_complete__")]
    # pydantic-core reuses the validator a complete class already has (its "prebuilt" one,
    # which validates by the validation aliases) in place of the schema it is given: the classes
    # are marked incomplete while the validator is built, synchronously.
    try:
        for cls in complete:
            setattr(cls, "__pydantic_complete__", False)  # noqa: B010
        return SchemaValidator(_by_serialization_alias(schema))
    finally:
        for cls in complete:
            setattr(cls, "__pydantic_complete__", True)  # noqa: B010


def _by_serialization_alias(node: Any) -> Any:
    """A copy of the core schema `node` whose fields are validated by their serialization alias."""
    if isinstance(node, dict):
        copy = {key: _by_serialization_alias(value) for key, value in node.items()}
        if node.get("type") in _FIELDS and "serialization_alias" in node:
            copy["validation_alias"] = node["serialization_alias"]
        return copy
    if isinstance(node, list):
        return [_by_serialization_alias(item) for item in node]
    return node


def _classes(node: Any, found: set[type]) -> set[type]:
    """The model and dataclass classes the core schema `node` builds."""
    if isinstance(node, dict):
        if node.get("type") in _CLASSES:
            found.add(node["cls"])
        for value in node.values():
            _classes(value, found)
    elif isinstance(node, list):
        for item in node:
            _classes(item, found)
    return found
