"""Python source snippets written the way ruff format writes them."""

LINE_LENGTH = 88
"""ruff's default, which the generated code and the wired app module are held to."""


def from_import(module: str, name: str, alias: str | None = None) -> str:
    """`from module import name [as alias]`, parenthesised if it does not fit on one line."""
    imported = name if alias in (None, name) else f"{name} as {alias}"
    code = f"from {module} import {imported}"
    return code if len(code) <= LINE_LENGTH else f"from {module} import (\n    {imported},\n)"
