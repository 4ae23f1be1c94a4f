"""The rows of ``ps``, ``images`` and ``history`` as ``--format`` sees them.

Owns: the docker CLI's format fields — ps: .ID .Image .Command .CreatedAt
.RunningFor .Ports .State .Status .Size .Names .Labels .Label .Mounts
.Networks .LocalVolumes; images: .Repository .Tag .ID .Digest .CreatedSince
.CreatedAt .Size .Containers; history: .ID .CreatedSince .CreatedAt
.CreatedBy .Size .Comment — each computed from the API's list entries the
way docker's formatter does, plus the default table layouts and headers.
"""

from __future__ import annotations

import time

from freight.cli.formatter import ellipsis
from freight.cli.gotemplate import go_quote
from freight.cli.units import human_duration, human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Label": "LABEL",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
}
IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_DIGEST_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)
IMAGES_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "SIZE",
}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}


def truncate_id(ident: str) -> str:
    """stringid.TruncateID: drop an 'algo:' prefix, keep 12 characters."""
    return ident.partition(":")[2][:12] if ":" in ident else ident[:12]


def go_time(unix: int) -> str:
    """Go's time.Time.String() in local time: '2024-05-01 10:00:00 +0000 UTC'."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(unix))


def rfc3339(unix: int) -> str:
    text = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(unix))
    return text[:-5] + ("Z" if text.endswith("+0000") else f"{text[-5:-2]}:{text[-2:]}")


def since(unix: int, now: float | None = None) -> str:
    return human_duration((now if now is not None else time.time()) - unix) + " ago"


class _Row:
    """Common machinery: the field list drives ``{{json .}}``."""

    FIELDS: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name)() for name in sorted(self.FIELDS)}


class ContainerRow(_Row):
    FIELDS = (
        "Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
        "Names", "Networks", "Ports", "RunningFor", "Size", "State", "Status",
    )  # fmt: skip

    def __init__(self, c: dict[str, Any], trunc: bool = True, now: float | None = None) -> None:
        self.c = c
        self.trunc = trunc
        self.now = now

    def ID(self) -> str:  # noqa: N802 - docker's field names are the template API
        return truncate_id(self.c.get("Id", "")) if self.trunc else self.c.get("Id", "")

    def Names(self) -> str:  # noqa: N802
        names = [n.lstrip("/") for n in self.c.get("Names") or []]
        if self.trunc:
            # Legacy links show up as "/other/alias"; docker hides them.
            names = [n for n in names if "/" not in n]
        return ",".join(names)

    def Image(self) -> str:  # noqa: N802
        image = self.c.get("Image") or ""
        if not image:
            return "<no image>"
        if self.trunc and truncate_id(self.c.get("ImageID", "")) == truncate_id(image):
            return truncate_id(image)
        if self.trunc and "@" in image:
            return image.split("@", 1)[0]
        return image

    def Command(self) -> str:  # noqa: N802
        command = self.c.get("Command") or ""
        return go_quote(ellipsis(command, 20) if self.trunc else command)

    def CreatedAt(self) -> str:  # noqa: N802
        return go_time(int(self.c.get("Created", 0)))

    def RunningFor(self) -> str:  # noqa: N802
        return since(int(self.c.get("Created", 0)), self.now)

    def Ports(self) -> str:  # noqa: N802
        return display_ports(self.c.get("Ports") or [])

    def State(self) -> str:  # noqa: N802
        return self.c.get("State") or ""

    def Status(self) -> str:  # noqa: N802
        return self.c.get("Status") or ""

    def Size(self) -> str:  # noqa: N802
        rw = human_size(self.c.get("SizeRw") or 0)
        virtual = human_size(self.c.get("SizeRootFs") or 0)
        return f"{rw} (virtual {virtual})"

    def Labels(self) -> str:  # noqa: N802
        labels = self.c.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in labels.items())

    def Label(self, name: str) -> str:  # noqa: N802
        return (self.c.get("Labels") or {}).get(name, "")

    def Mounts(self) -> str:  # noqa: N802
        names = []
        for mount in self.c.get("Mounts") or []:
            name = mount.get("Name") or mount.get("Source") or ""
            names.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def LocalVolumes(self) -> str:  # noqa: N802
        mounts = self.c.get("Mounts") or []
        return str(sum(1 for m in mounts if m.get("Driver") == "local"))

    def Networks(self) -> str:  # noqa: N802
        networks = (self.c.get("NetworkSettings") or {}).get("Networks") or {}
        return ",".join(sorted(networks))


def display_ports(ports: list[dict[str, Any]]) -> str:
    """'0.0.0.0:8080->80/tcp, 443/tcp' (docker's DisplayablePorts without ranges)."""
    shown = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""))):
        private = f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
        if p.get("PublicPort"):
            ip = p.get("IP") or ""
            host = f"[{ip}]" if ":" in ip else ip
            shown.append(f"{host}:{p['PublicPort']}->{private}")
        else:
            shown.append(private)
    return ", ".join(dict.fromkeys(shown))


class ImageRow(_Row):
    FIELDS = (
        "Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
        "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize",
    )  # fmt: skip

    def __init__(
        self, image: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool = True
    ) -> None:
        self.i = image
        self.repo = repo
        self.tag = tag
        self.digest = digest
        self.trunc = trunc

    def Repository(self) -> str:  # noqa: N802
        return self.repo

    def Tag(self) -> str:  # noqa: N802
        return self.tag

    def Digest(self) -> str:  # noqa: N802
        return self.digest

    def ID(self) -> str:  # noqa: N802
        ident = self.i.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    def CreatedSince(self) -> str:  # noqa: N802
        return since(int(self.i.get("Created", 0)))

    def CreatedAt(self) -> str:  # noqa: N802
        return go_time(int(self.i.get("Created", 0)))

    def Size(self) -> str:  # noqa: N802
        return human_size(self.i.get("Size") or 0)

    VirtualSize = Size

    def Containers(self) -> str:  # noqa: N802
        count = self.i.get("Containers", -1)
        return "N/A" if count is None or count < 0 else str(count)

    def SharedSize(self) -> str:  # noqa: N802
        shared = self.i.get("SharedSize", -1)
        return "N/A" if shared is None or shared < 0 else human_size(shared)

    def UniqueSize(self) -> str:  # noqa: N802
        shared = self.i.get("SharedSize", -1)
        if shared is None or shared < 0:
            return "N/A"
        return human_size((self.i.get("Size") or 0) - shared)


def image_rows(images: list[dict[str, Any]], trunc: bool = True) -> list[ImageRow]:
    """One row per repo:tag (docker's images table), '<none>' where missing."""
    rows = []
    for image in images:
        digests = {
            d.rpartition("@")[0]: d.rpartition("@")[2] for d in image.get("RepoDigests") or []
        }
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        for ref in tags:
            repo, _, tag = ref.rpartition(":")
            rows.append(ImageRow(image, repo, tag, digests.get(repo, "<none>"), trunc))
        if not tags:
            for repo, digest in digests.items() or [("<none>", "<none>")]:
                rows.append(ImageRow(image, repo or "<none>", "<none>", digest, trunc))
    return rows


class HistoryRow(_Row):
    FIELDS = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")

    def __init__(self, h: dict[str, Any], trunc: bool = True, human: bool = True) -> None:
        self.h = h
        self.trunc = trunc
        self.human = human

    def ID(self) -> str:  # noqa: N802
        ident = self.h.get("Id") or "<missing>"
        return truncate_id(ident) if self.trunc and ident != "<missing>" else ident

    def CreatedSince(self) -> str:  # noqa: N802
        created = int(self.h.get("Created", 0))
        return since(created) if self.human else rfc3339(created)

    def CreatedAt(self) -> str:  # noqa: N802
        created = int(self.h.get("Created", 0))
        return rfc3339(created) if not self.human else go_time(created)

    def CreatedBy(self) -> str:  # noqa: N802
        created_by = (self.h.get("CreatedBy") or "").replace("\t", " ")
        return ellipsis(created_by, 45) if self.trunc else created_by

    def Size(self) -> str:  # noqa: N802
        size = self.h.get("Size") or 0
        return human_size(size) if self.human else str(size)

    def Comment(self) -> str:  # noqa: N802
        return self.h.get("Comment") or ""
