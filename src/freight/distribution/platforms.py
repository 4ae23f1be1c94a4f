"""Choosing an image for one platform from an index (manifest list)."""

from __future__ import annotations

import platform as host

from freight.errors import InvalidArgument, NotFound
from freight.oci.image import Descriptor, Index

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine, in OCI's names."""
    machine = host.machine()
    arch = _ARCH.get(machine, machine)
    variant = "v8" if arch == "arm64" else ("v7" if arch == "arm" else "")
    return "linux", arch, variant


def parse_platform(text: str) -> tuple[str, str, str]:
    """ "linux/arm64/v8" -> ("linux", "arm64", "v8"); an empty text is the host's."""
    if not text:
        return host_platform()
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(
            f'"{text}": unknown operating system or architecture: invalid argument'
        )
    if len(parts) == 1:
        os_, arch, variant = host_platform()
        return (
            (parts[0], arch, variant) if parts[0] in ("linux", "windows") else (os_, parts[0], "")
        )
    arch = _ARCH.get(parts[1], parts[1])
    return parts[0], arch, parts[2] if len(parts) == 3 else ""


def is_foreign(text: str) -> bool:
    """Whether `text` names another OS or architecture than this machine's."""
    return parse_platform(text)[:2] != host_platform()[:2]


def format_platform(wanted: tuple[str, str, str]) -> str:
    return "/".join(p for p in wanted if p)


def select(index: Index, wanted: tuple[str, str, str]) -> Descriptor:
    """The index entry for `wanted`; an entry without a variant matches any variant."""
    os_, arch, variant = wanted
    candidates = [
        d
        for d in index.manifests
        if d.platform is not None and d.platform.os == os_ and d.platform.architecture == arch
    ]
    exact = [d for d in candidates if (d.platform.variant or "") == variant]  # type: ignore[union-attr]
    loose = [d for d in candidates if not variant or not d.platform.variant]  # type: ignore[union-attr]
    for group in (exact, loose, candidates if not variant else []):
        if group:
            return group[0]
    raise NotFound(
        f"no matching manifest for {format_platform(wanted)} in the manifest list entries"
    )
