"""What a requirement the project lists allows, and its minimum raised without rewriting the rest.

`packaging` parses and compares requirements. Only the text of the minimum is replaced, so the
user's name spelling, extras, other bounds and markers stay as written.
"""

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

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


def same_distribution(listed: Requirement, needed: Requirement) -> bool:
    return canonicalize_name(listed.name) == canonicalize_name(needed.name)


def provides(listed: Requirement, needed: Requirement) -> bool:
    """Whether installing `listed` installs `needed`'s distribution with every extra it asks."""
    return same_distribution(listed, needed) and needed.extras <= listed.extras


def with_minimum(text: str, needed: str, where: str) -> str:
    """`text`, a requirement of `needed`'s distribution listed in `where`, with the minimum
    version of `needed`.

    Unchanged when it names no version (it allows the needed one) or allows none below the
    minimum; refused when it allows no version that `needed` allows.
    """
    listed, wanted = parse(text, where), Requirement(needed)
    if not listed.specifier:
        return text
    minimum, floor = _minimum(wanted), _floor(listed)
    if floor is not None and floor >= minimum:
        if wanted.specifier.contains(floor, prereleases=True):
            return text
    elif listed.specifier.contains(minimum, prereleases=True):
        return _raised(text, minimum)
    raise BadInput(
        f"pyproject.toml: {where} lists {text}, but the generated code needs {needed}: allow"
        " that version, then run the command again"
    )


def _minimum(needed: Requirement) -> Version:
    """The version of `needed`'s `>=` specifier: scaffold's requirements each have one."""
    (minimum,) = (Version(s.version) for s in needed.specifier if s.operator == ">=")
    return minimum


def _floor(requirement: Requirement) -> Version | None:
    """The lowest version the requirement allows, as far as its specifiers say; None when no
    specifier bounds it from below."""
    floors = [
        version
        for specifier in requirement.specifier
        if (version := _lower_bound(specifier)) is not None
    ]
    return max(floors, default=None)


def _lower_bound(specifier: Specifier) -> Version | None:
    """The lowest version the specifier allows; None if it allows every version below some."""
    if specifier.operator in ("<", "<=", "!="):
        return None
    try:  # `==1.2.*` allows 1.2 and up; `===` may name something that is not a version
        return Version(specifier.version.removesuffix(".*"))
    except InvalidVersion:
        return None


def _raised(text: str, minimum: Version) -> str:
    """`text` with its lower bounds under `minimum` replaced by `>=minimum`, written where the
    first of them was, with its spacing; `>=minimum` comes first if there was none."""
    parts = _PARTS.fullmatch(text)
    assert parts is not None, f"{text!r} parsed as a requirement"
    specifiers = parts["specifiers"]
    parenthesised = specifiers.startswith("(")
    tokens = (specifiers[1:-1] if parenthesised else specifiers).split(",")
    below = [_below(Specifier(token.strip()), minimum) for token in tokens]
    if any(below):
        first = below.index(True)
        tokens[first] = _with_version(tokens[first], minimum)
        tokens = [t for index, t in enumerate(tokens) if index == first or not below[index]]
    else:
        tokens.insert(0, f">={minimum}")
    raised = ",".join(tokens)
    return parts["head"] + (f"({raised})" if parenthesised else raised) + parts["tail"]


def _below(specifier: Specifier, minimum: Version) -> bool:
    """Whether the specifier is a lower bound under `minimum`: one to replace."""
    return specifier.operator in (">=", ">") and Version(specifier.version) < minimum


def _with_version(token: str, minimum: Version) -> str:
    """`token`, a lower bound such as ` >= 0.1`, as `>=minimum` with the same spacing."""
    specifier = Specifier(token.strip())
    leading = token[: len(token) - len(token.lstrip())]
    trailing = token[len(token.rstrip()) :]
    version = token.strip().removeprefix(specifier.operator)
    between = version[: len(version) - len(version.lstrip())]
    return f"{leading}>={between}{minimum}{trailing}"
