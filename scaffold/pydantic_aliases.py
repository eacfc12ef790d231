"""pydantic's alias generators (`pydantic.alias_generators`), written again: scaffold reads an
events file without importing it, and does not depend on pydantic, yet must name a field as the
channel sends it when the file's model sets `alias_generator=to_camel`.

These follow pydantic 2's code line for line; tests compare them with the installed pydantic.
"""

import re
from collections.abc import Callable, Mapping


def to_pascal(snake: str) -> str:
    """`stock_level` -> `StockLevel`."""
    camel = snake.title()
    return re.sub("([0-9A-Za-z])_(?=[0-9A-Z])", lambda m: m.group(1), camel)


def to_camel(snake: str) -> str:
    """`stock_level` -> `stockLevel`; a name already camelCase stays as it is."""
    if re.match("^[a-z]+[A-Za-z0-9]*$", snake) and not re.search(r"\d[a-z]", snake):
        return snake
    camel = to_pascal(snake)
    return re.sub("(^_*[A-Z])", lambda m: m.group(1).lower(), camel)


def to_snake(camel: str) -> str:
    """`StockLevel`, `stockLevel` or `stock-level` -> `stock_level`."""
    snake = re.sub(r"([A-Z]+)([A-Z][a-z])", lambda m: f"{m.group(1)}_{m.group(2)}", camel)
    snake = re.sub(r"([a-z])([A-Z])", lambda m: f"{m.group(1)}_{m.group(2)}", snake)
    snake = re.sub(r"([0-9])([A-Z])", lambda m: f"{m.group(1)}_{m.group(2)}", snake)
    snake = re.sub(r"([a-z])([0-9])", lambda m: f"{m.group(1)}_{m.group(2)}", snake)
    return snake.replace("-", "_").lower()


ALIAS_GENERATORS: Mapping[str, Callable[[str], str]] = {
    f"pydantic.alias_generators.{function.__name__}": function
    for function in (to_camel, to_pascal, to_snake)
}
"""The generators scaffold can follow, by their qualified name."""
