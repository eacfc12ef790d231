"""What a constraint allows, against what is needed: kept, raised, or refused.

Whatever syntax a project writes a constraint in (a PEP 508 requirement, `requires-python`, a
Poetry constraint), it is read here as PEP 440 specifiers, which `packaging` compares.
"""

from enum import Enum

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version


class Verdict(Enum):
    KEEP = "it names no version, or allows none below the minimum"
    RAISE = "it allows the minimum, and older versions too"
    REFUSE = "it allows no version that is needed"


def verdict(allowed: SpecifierSet, needed: SpecifierSet, minimum: Version) -> Verdict:
    """What to do with a constraint that `allowed`, where `needed` (whose lowest version is
    `minimum`) is needed."""
    if not allowed:
        return Verdict.KEEP
    floor = _floor(allowed)
    if floor is not None and floor >= minimum:
        return Verdict.KEEP if needed.contains(floor, prereleases=True) else Verdict.REFUSE
    return Verdict.RAISE if allowed.contains(minimum, prereleases=True) else Verdict.REFUSE


def specifier_set(text: str) -> SpecifierSet | None:
    """`text` as PEP 440 specifiers; None if it is not."""
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def is_lower_bound_below(specifier: Specifier, minimum: Version) -> bool:
    """Whether the specifier is a `>=` or `>` bound under `minimum`: one to replace."""
    return specifier.operator in (">=", ">") and Version(specifier.version) < minimum


def _floor(allowed: SpecifierSet) -> Version | None:
    """The lowest version allowed, as far as the specifiers say; None when none bounds it from
    below."""
    floors = [version for s in allowed if (version := _lower_bound(s)) is not None]
    return max(floors, default=None)


def _lower_bound(specifier: Specifier) -> Version | None:
    """The lowest version the specifier allows; None if it allows every version below some."""
    if specifier.operator in ("<", "<=", "!="):
        return None
    try:  # `==1.2.*` allows 1.2 and up; `===` may name something that is not a version
        return Version(specifier.version.removesuffix(".*"))
    except InvalidVersion:
        return None
