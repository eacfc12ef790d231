"""PEP 508 requirements (and `requires-python`'s bare specifiers): what one allows, and its
minimum raised without rewriting the rest.

`packaging` parses and compares them. Only the text of the minimum is replaced, so the user's
name spelling, extras, other bounds and markers stay as written.
"""

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.version import Version

from scaffold.dependencies.versions import Verdict, is_lower_bound_below, specifier_set, verdict
from scaffold.errors import BadInput

_PARTS = re.compile(
    r"(?P<head>\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?\s*)"  # name [extras]
    r"(?P<specifiers>[^;]*?)"
    r"(?P<tail>\s*(?:;.*)?)",  # ; marker
    re.DOTALL,
)


def parse(requirement: str, where: str) -> Requirement:
    try:
        return Requirement(requirement)
    except InvalidRequirement as error:
        raise BadInput(
            f"pyproject.toml: {requirement!r} in {where} is not a valid requirement: {error}"
        ) from None


def parse_specifiers(text: str, where: str) -> SpecifierSet:
    """`requires-python`'s specifiers."""
    specifiers = specifier_set(text)
    if specifiers is None:
        raise BadInput(
            f"pyproject.toml: {where} {text!r} is not a valid version specifier, such as '>=3.11'"
        )
    return specifiers


def requirement_with_minimum(text: str, needed: SpecifierSet, minimum: Version) -> str | None:
    """`text`, a requirement, with the `minimum` of what is `needed`: itself when it names no
    version or allows none older; None when it allows none of the `needed` versions."""
    if not Requirement(text).specifier:  # no version, or a URL
        return text
    parts = _PARTS.fullmatch(text)
    assert parts is not None, f"{text!r} parsed as a requirement"
    specifiers = specifiers_with_minimum(parts["specifiers"], needed, minimum)
    return None if specifiers is None else parts["head"] + specifiers + parts["tail"]


def specifiers_with_minimum(text: str, needed: SpecifierSet, minimum: Version) -> str | None:
    """The same for bare specifiers, such as `requires-python`'s, or a requirement's
    (parenthesised or not)."""
    parenthesised = text.startswith("(")
    inner = text[1:-1] if parenthesised else text
    found = verdict(SpecifierSet(inner), needed, minimum)
    if found is Verdict.REFUSE:
        return None
    if found is Verdict.KEEP:
        return text
    raised = _raised(inner, minimum)
    return f"({raised})" if parenthesised else raised


def _raised(specifiers: str, minimum: Version) -> str:
    """`specifiers` with their lower bounds under `minimum` replaced by `>=minimum`, written where
    the first of them was, with its spacing; `>=minimum` comes first if there was none."""
    tokens = specifiers.split(",")
    below = [is_lower_bound_below(Specifier(token.strip()), minimum) for token in tokens]
    if any(below):
        first = below.index(True)
        tokens[first] = lower_bound(tokens[first], minimum)
        tokens = [t for index, t in enumerate(tokens) if index == first or not below[index]]
    else:
        tokens.insert(0, f">={minimum}")
    return ",".join(tokens)


def lower_bound(token: str, minimum: Version) -> str:
    """`token`, a lower bound such as ` >= 0.1`, as `>=minimum` with the same spacing."""
    specifier = Specifier(token.strip())
    leading = token[: len(token) - len(token.lstrip())]
    trailing = token[len(token.rstrip()) :]
    version = token.strip().removeprefix(specifier.operator)
    between = version[: len(version) - len(version.lstrip())]
    return f"{leading}>={between}{minimum}{trailing}"
