"""Image references: Docker's grammar, its normalisation and its error wording.

The grammar (distribution/reference), in the regular-expression pieces below:

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain "/"] remote-name
    domain          := host [":" port-number]
    host            := domain-name | IPv4address | "[" IPv6address "]"
    domain-name     := domain-component ["." domain-component]*
    domain-component:= /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    remote-name     := path-component ["/" path-component]*
    path-component  := alphanumeric [separator alphanumeric]*
    alphanumeric    := /[a-z0-9]+/
    separator       := /[_.]|__|[-]+/
    tag             := /[\\w][\\w.-]{0,127}/
    digest          := algorithm ":" hex (at least 32 hex digits)

Normalisation turns what users type into the full form:

    busybox                  -> docker.io/library/busybox:latest
    localhost:5000/a/b:t     -> localhost:5000/a/b:t
    index.docker.io/x/y      -> docker.io/x/y:latest

and the *familiar* form undoes it for display ("busybox:latest").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from freight import errors
from freight.oci.digest import Digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_ANCHORED_DOMAIN = re.compile(_DOMAIN)
_FULL_ID = re.compile(r"(?:sha256:)?[a-f0-9]{64}")
_ID_PREFIX = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}")

INVALID_FORMAT = "invalid reference format"


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised reference; `domain` and `path` are always set."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """The full repository name: "docker.io/library/busybox"."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """The short name users type: "busybox", "localhost:5000/a/b"."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        return rest if "/" not in rest else self.path

    def familiar_string(self) -> str:
        """The short form with tag and digest: "busybox:latest"."""
        return self.familiar_name() + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, _parse_tag(tag), self.digest)

    def with_digest(self, digest: Digest) -> Reference:
        return Reference(self.domain, self.path, self.tag, digest)

    def name_only(self) -> Reference:
        return Reference(self.domain, self.path)

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return tag + digest

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse(value: str) -> Reference:
    """Parse a reference that is already in full form (no normalisation).

    The domain is whatever precedes the first "/" when it looks like a host;
    use `parse_normalized` for what a user typed.
    """
    if not value:
        raise errors.InvalidArgument(
            f"{INVALID_FORMAT}: repository name must have at least one component"
        )
    match = _REFERENCE.fullmatch(value)
    if match is None:
        if _REFERENCE.fullmatch(value.lower()):
            raise errors.InvalidArgument(f"{INVALID_FORMAT}: repository name must be lowercase")
        raise errors.InvalidArgument(INVALID_FORMAT)
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise errors.InvalidArgument(
            f"{INVALID_FORMAT}: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    domain, path = _split_domain(name)
    return Reference(domain, path, tag, Digest.parse(digest) if digest else None)


def parse_normalized(value: str, *, default_tag: bool = True) -> Reference:
    """Parse what a user typed, as Docker does ("busybox" -> docker.io/library/busybox).

    With `default_tag`, a reference without tag or digest gets ":latest".
    """
    if _FULL_ID.fullmatch(value) and not value.startswith("sha256:"):
        raise errors.InvalidArgument(
            f"invalid repository name ({value}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(value)
    remote_name = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote_name.lower() != remote_name:
        raise errors.InvalidArgument(
            f"{INVALID_FORMAT}: repository name ({remote_name}) must be lowercase"
        )
    ref = parse(f"{domain}/{remainder}")
    if default_tag and ref.tag is None and ref.digest is None:
        ref = ref.with_tag(DEFAULT_TAG)
    return ref


def _split_docker_domain(value: str) -> tuple[str, str]:
    """Docker's rule: the first component is a domain if it has "." or ":", or is localhost."""
    first, sep, rest = value.partition("/")
    is_domain = sep and (
        any(c in first for c in ".:") or first == "localhost" or first.lower() != first
    )
    domain, remainder = (first, rest) if is_domain else (DEFAULT_DOMAIN, value)
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _split_domain(name: str) -> tuple[str, str]:
    """Split a full name at its first "/" when that component is a domain."""
    first, sep, rest = name.partition("/")
    if (
        sep
        and _ANCHORED_DOMAIN.fullmatch(first)
        and (any(c in first for c in ".:[") or first == "localhost" or first.lower() != first)
    ):
        return first, rest
    # Not a domain: treat as Docker Hub, as distribution's parser would leave it
    # domain-less; callers of `parse` pass full names so this is rare.
    return DEFAULT_DOMAIN, name


def _parse_tag(tag: str) -> str:
    if not re.fullmatch(_TAG, tag):
        raise errors.InvalidArgument(f"{INVALID_FORMAT}: invalid tag {tag!r}")
    return tag


def is_full_id(value: str) -> bool:
    """True for a full image id: 64 lowercase hex, optionally "sha256:"-prefixed."""
    return _FULL_ID.fullmatch(value) is not None


def looks_like_id_prefix(value: str) -> bool:
    """True if `value` could be (a prefix of) an image id, as `docker rmi 3f5` accepts."""
    return _ID_PREFIX.fullmatch(value) is not None


def id_hex(value: str) -> str:
    """The hex part of an id or id prefix ("sha256:abc" -> "abc")."""
    return value.removeprefix("sha256:")
