"""Docker Engine API versions: the range freight speaks and how to compare them.

API versions are dotted numbers ("1.24", "1.45") compared component by
component as integers, the way moby's `api/types/versions` does: a missing
component counts as 0 and a non-numeric one as 0 too, so comparison never
fails. Whether a client's version is acceptable is decided at the HTTP edge
(`freight.apiserver.router`); this module only knows the numbers.

    >>> less_than("1.9", "1.24")
    True
    >>> compare("1.45", "1.45.0")
    0
"""

MIN_API_VERSION = "1.24"
"""The oldest API version freight answers (what dockerd 25+ accepts)."""

API_VERSION = "1.45"
"""The newest API version freight speaks; also the default when a path has no /vX.Y."""


def parse(version: str) -> tuple[int, ...]:
    """Split "1.45" into (1, 45); components that are not numbers count as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, equal to or newer than `b`."""
    pa, pb = parse(a), parse(b)
    width = max(len(pa), len(pb))
    pa += (0,) * (width - len(pa))
    pb += (0,) * (width - len(pb))
    return (pa > pb) - (pa < pb)


def less_than(a: str, b: str) -> bool:
    return compare(a, b) < 0


def less_or_equal(a: str, b: str) -> bool:
    return compare(a, b) <= 0


def greater_than(a: str, b: str) -> bool:
    return compare(a, b) > 0


def greater_or_equal(a: str, b: str) -> bool:
    return compare(a, b) >= 0


def is_supported(version: str) -> bool:
    """True when MIN_API_VERSION <= version <= API_VERSION."""
    return greater_or_equal(version, MIN_API_VERSION) and less_or_equal(version, API_VERSION)
