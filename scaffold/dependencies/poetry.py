"""Poetry's version constraints: what one allows, and its minimum raised in Poetry's syntax.

Poetry writes `^1.2` (up to the next major, or the next minor below 1.0: `^0.100` is
`>=0.100,<0.101`), `~1.2` (up to the next minor), `1.2.*`, a bare version (exactly it) and PEP 440
comparisons, joined by commas or spaces (all of them) and by `||` (any of them), as poetry-core
parses them. Each is read as PEP 440 specifiers; a raised minimum keeps the user's operator when
that keeps the same upper bound (`^3.10` becomes `^3.11`), and is written `>=minimum,<upper`
otherwise.
"""

import re
from collections.abc import Callable

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from scaffold.dependencies.pep508 import lower_bound
from scaffold.dependencies.versions import Verdict, specifier_set, verdict
from scaffold.errors import BadInput

_OR = re.compile(r"(\s*\|\|?\s*)")
_AND = re.compile(r"(?<!^)(?<![\^~=>< ,])( *(?<!-)[, ](?!-) *)(?!,|$)")  # poetry-core's
_VERSION = r"v?(?P<version>[0-9][0-9A-Za-z.+!-]*?)"
_WILDCARD = re.compile(rf"(?P<op>!=|==)?\s*{_VERSION}(?:\.[xX*])+")
_BOUNDED = re.compile(rf"(?P<op>\^|~(?!=)|~=)\s*{_VERSION}")
_COMPARISON = re.compile(rf"(?P<op><>|!=|>=?|<=?|==?)?\s*{_VERSION}(?P<wildcard>\.\*)?")
_ANY = ("", "*", "x", "X")


def with_minimum(text: str, needed: SpecifierSet, minimum: Version, where: str) -> str | None:
    """`text`, a Poetry constraint listed as `where` says, with the `minimum` of what is
    `needed`: itself when it allows no older version; None when it allows none that is needed.

    Of `||` alternatives, those that allow only older versions go; the others are raised.
    """
    alternatives = _OR.split(text)
    kept, changed = [], False
    for alternative in alternatives[::2]:
        tokens = _AND.split(alternative.strip())
        found = verdict(_specifiers(tokens[::2], where), needed, minimum)
        changed |= found is not Verdict.KEEP
        if found is Verdict.RAISE:
            kept.append(_raised(tokens, minimum))
        elif found is Verdict.KEEP:
            kept.append(alternative)
    if not kept:
        return None
    if not changed:
        return text
    return " || ".join(kept) if len(kept) > 1 else kept[0]


def _specifiers(tokens: list[str], where: str) -> SpecifierSet:
    """What the constraints joined by commas or spaces allow together."""
    specifiers = [s for token in tokens for s in _pep440(token, where)]
    allowed = specifier_set(",".join(specifiers))
    if allowed is None:
        raise _invalid(where)
    return allowed


def _pep440(token: str, where: str) -> list[str]:
    """One constraint as PEP 440 specifiers."""
    if token in _ANY:
        return []
    if wildcard := _WILDCARD.fullmatch(token):
        return [f"{wildcard['op'] or '=='}{_version(wildcard['version'], where)}.*"]
    if bounded := _BOUNDED.fullmatch(token):
        version, operator = _version(bounded["version"], where), bounded["op"]
        if operator == "~=":
            return [f"~={version}"]
        return [f">={version}", f"<{_UPPER[operator](version)}"]
    if comparison := _COMPARISON.fullmatch(token):
        operator = {"<>": "!=", "=": "==", None: "=="}.get(comparison["op"], comparison["op"])
        return [f"{operator}{_version(comparison['version'], where)}{comparison['wildcard'] or ''}"]
    raise _invalid(where)


def _raised(tokens: list[str], minimum: Version) -> str:
    """An alternative's constraints (and the separators between them, as split) with every lower
    bound under `minimum` raised to it; `>=minimum` first if none bounded it from below."""
    raised = list(tokens)
    for index in range(0, len(tokens), 2):
        raised[index] = _token_raised(tokens[index], minimum)
    if raised == tokens:
        raised = [f">={minimum}", ",", *tokens]
    return "".join(raised)


def _token_raised(token: str, minimum: Version) -> str:
    """`token` with its lower bound raised to `minimum`, if it has one under it."""
    if wildcard := _WILDCARD.fullmatch(token):
        version = Version(wildcard["version"])
        if wildcard["op"] == "!=" or version >= minimum:
            return token
        return f">={minimum},<{_written((*version.release[:-1], version.release[-1] + 1))}"
    if bounded := _BOUNDED.fullmatch(token):
        operator, version = bounded["op"], Version(bounded["version"])
        if version >= minimum:
            return token
        stop = _UPPER[operator](version)
        if _UPPER[operator](minimum) == stop:
            return f"{operator}{minimum}"
        return f">={minimum},<{stop}"
    comparison = _COMPARISON.fullmatch(token)
    assert comparison is not None, f"{token!r} was read as a constraint"
    if comparison["op"] in (">=", ">") and Version(comparison["version"]) < minimum:
        return lower_bound(token, minimum)
    return token


def _caret_upper(version: Version) -> Version:
    """Where `^version` stops: the next major, or below 1.0 the next minor (or patch)."""
    release = version.release
    first = next((i for i, part in enumerate(release) if part), len(release) - 1)
    return _written((*release[:first], release[first] + 1))


def _tilde_upper(version: Version) -> Version:
    """Where `~version` stops: the next minor, or the next major for `~1`."""
    release = version.release
    return _written((release[0] + 1,) if len(release) == 1 else (release[0], release[1] + 1))


def _compatible_upper(version: Version) -> Version:
    """Where `~=version` stops (PEP 440)."""
    release = version.release
    return _written((*release[:-2], release[-2] + 1))


_UPPER: dict[str, Callable[[Version], Version]] = {
    "^": _caret_upper,
    "~": _tilde_upper,
    "~=": _compatible_upper,
}


def _written(release: tuple[int, ...]) -> Version:
    return Version(".".join(map(str, release)))


def _version(text: str, where: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise _invalid(where) from None


def _invalid(where: str) -> BadInput:
    return BadInput(
        f"pyproject.toml: {where} is not a Poetry version constraint, such as '^1.2' or '>=1.2,<2'"
    )
