"""Engine API image endpoints: list, inspect, history, tag, remove, import
(`POST /images/create?fromSrc=`), and freight's own bootstrap.
"""

from __future__ import annotations

import asyncio
import fnmatch
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

from freight.apiserver.http import (
    AnyResponse,
    Request,
    StreamingResponse,
    empty_response,
    encode_json,
    json_response,
)
from freight.apiserver.router import Router
from freight.apiserver.streams import BodyPipe
from freight.errors import FreightError, InvalidArgument, NotFound
from freight.oci import reference as refs
from freight.services import archives, imports
from freight.services.clock import unix_seconds
from freight.services.images import ImageService
from freight.services.model import ImageSummary

PIPE_CHUNK = 1 << 16


class ImageRoutes:
    def __init__(self, images: ImageService) -> None:
        self.images = images

    def register(self, r: Router) -> None:
        r.add("GET", "/images/json", self.list)
        r.add("POST", "/images/create", self.create)
        r.add("POST", "/freight/images/bootstrap", self.bootstrap)
        r.add("GET", "/images/get", self.save)
        r.add("POST", "/images/load", self.load)
        r.add("GET", "/images/{name:path}/get", self.save_one)
        r.add("GET", "/images/{name:path}/json", self.inspect)
        r.add("GET", "/images/{name:path}/history", self.history)
        r.add("POST", "/images/{name:path}/tag", self.tag)
        r.add("DELETE", "/images/{name:path}", self.remove)

    async def list(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        images = self.images.list()
        if not req.query.bool("all", False):
            # As docker: untagged images with children are a build's intermediate
            # steps, listed only with -a.
            parents = {i.parent for i in images if i.parent}
            images = [i for i in images if i.repo_tags or i.id not in parents]
        rows = [image_summary_json(i, req.api_version) for i in images]
        rows = [r for r in rows if _image_matches(r, filters)]
        rows.sort(key=lambda r: r["Created"], reverse=True)
        return json_response(rows)

    async def inspect(self, req: Request) -> AnyResponse:
        image = self.images.get(req.params["name"])
        return json_response(image_inspect_json(image, self.images.image_dirs(image.id)))

    async def history(self, req: Request) -> AnyResponse:
        image = self.images.get(req.params["name"])
        tags = image.repo_tags
        out = []
        for entry, size, image_id in self.images.history(req.params["name"]):
            out.append(
                {
                    "Id": image_id,
                    "Created": unix_seconds(entry.created) if entry.created else 0,
                    "CreatedBy": entry.created_by or "",
                    "Tags": tags if image_id == image.id else None,
                    "Size": size,
                    "Comment": entry.comment or "",
                }
            )
        return json_response(out)

    async def tag(self, req: Request) -> AnyResponse:
        repo = req.query.get("repo") or ""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        tag = req.query.get("tag") or ""
        target = f"{repo}:{tag}" if tag else repo
        self.images.tag(req.params["name"], target)
        return empty_response(201)

    async def remove(self, req: Request) -> AnyResponse:
        result = await asyncio.to_thread(
            self.images.remove, req.params["name"], req.query.bool("force")
        )
        return json_response(result)

    async def create(self, req: Request) -> AnyResponse:
        q = req.query
        if q.get("fromImage"):
            name = q.get("fromImage") or ""
            tag = q.get("tag") or ""
            full = (
                f"{name}:{tag}"
                if tag and "@" not in name and ":" not in name.rsplit("/", 1)[-1]
                else name
            )
            raise NotFound(
                f"pull access denied for {full}: freight cannot pull from registries yet; "
                f"make the image locally with 'freight image bootstrap {name}' or 'freight import'"
            )
        source = q.get("fromSrc")
        if not source:
            raise InvalidArgument("fromImage or fromSrc is required")
        repo = q.get("repo") or ""
        tag = q.get("tag") or ""
        repo_tag = f"{repo}:{tag}" if repo and tag else repo
        changes = q.get_all("changes")
        message = q.get("message") or ""
        if repo_tag:
            refs.parse_normalized(repo_tag)  # a bad name fails before the body is read
        stream = BodyPipe(req.body) if source == "-" else None

        def work() -> str:
            src: BinaryIO = stream.reader if stream else _open_url(source)
            try:
                return imports.import_image(self.images, src, repo_tag, changes, message, source)
            finally:
                src.close()

        # As dockerd: a failure before any output is an HTTP error (400 for a bad archive),
        # so the import runs to its end before the answer starts.
        pump = asyncio.create_task(stream.pump()) if stream else None
        try:
            image_id = await asyncio.to_thread(work)
        finally:
            if pump:
                pump.cancel()
        return json_response({"status": image_id})

    async def bootstrap(self, req: Request) -> AnyResponse:
        name = req.query.get("image") or ""
        if not name:
            raise InvalidArgument("image is required, for example busybox or debian:bookworm")
        full = refs.parse_normalized(name)
        if not full.tag:
            full = full.with_tag(refs.DEFAULT_TAG)

        def work() -> str:
            return imports.bootstrap(self.images, str(full))

        def done(image_id: str) -> dict[str, Any]:
            return {"status": f"Bootstrapped {full.familiar_string()} as {image_id}"}

        return _message_stream(
            work, done, None, start={"status": f"Bootstrapping {full.familiar_string()}"}
        )

    # save / load (services.archives) -----------------------------------------

    async def save(self, req: Request) -> AnyResponse:
        return await self._save(req.query.get_all("names"))

    async def save_one(self, req: Request) -> AnyResponse:
        return await self._save([req.params["name"]])

    async def _save(self, names: list[str]) -> AnyResponse:
        from freight.apiserver.routes_commit import TAR_CONTENT_TYPE, threaded_stream

        # Names are resolved before the 200, so a missing image is a 404.
        targets = await asyncio.to_thread(archives.save_targets, self.images, names)

        def write(out: BinaryIO) -> None:
            archives.save(self.images, targets, out)

        return StreamingResponse(threaded_stream(write), content_type=TAR_CONTENT_TYPE)

    async def load(self, req: Request) -> AnyResponse:
        """As dockerd: 200 at once, then "Loaded image: …" lines or an error message."""
        quiet = req.query.bool("quiet")
        pipe = BodyPipe(req.body)
        lines: list[str] = []

        def work() -> str:
            try:
                archives.load(self.images, pipe.reader, lines.append)
            finally:
                pipe.reader.close()
            return ""

        def done(_: str) -> dict[str, Any]:
            return {"stream": "".join(line + "\n" for line in lines)}

        del quiet  # no progress bars to hide: only the result lines are sent
        return _message_stream(work, done, pipe)


def _open_url(url: str) -> BinaryIO:
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"fromSrc must be '-' or an http(s) URL, not {url!r}")
    try:
        return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - scheme checked above
    except OSError as e:
        raise InvalidArgument(f"cannot download {url}: {e}") from e


def _message_stream(
    work: Callable[[], str],
    done: Callable[[str], dict[str, Any]],
    pipe: BodyPipe | None,
    start: dict[str, Any] | None = None,
) -> AnyResponse:
    """Run `work` in a thread and report as Docker's JSON message stream.

    Errors after the 200 go out as {"errorDetail": …, "error": …}, as dockerd does.
    """

    async def body() -> AsyncIterator[bytes]:
        if start:
            yield encode_json(start)
        pump = asyncio.create_task(pipe.pump()) if pipe else None
        try:
            result = await asyncio.to_thread(work)
            yield encode_json(done(result))
        except FreightError as e:
            yield encode_json({"errorDetail": {"message": str(e)}, "error": str(e)})
        finally:
            if pump:
                pump.cancel()
                if pipe:
                    pipe.reader.close()

    return StreamingResponse(body())


def image_summary_json(i: ImageSummary, api_version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": i.id,
        "ParentId": i.parent,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": unix_seconds(i.created),
        "Size": i.size,
        "SharedSize": -1,
        "Labels": i.config.config.labels or {},
        "Containers": -1,
    }
    if _older_than(api_version, "1.44"):
        out["VirtualSize"] = i.size
    return out


def _older_than(version: str, than: str) -> bool:
    return tuple(map(int, version.split("."))) < tuple(map(int, than.split(".")))


def image_inspect_json(i: ImageSummary, graph: dict[str, str] | None = None) -> dict[str, Any]:
    cfg = i.config
    c = cfg.config
    config = {
        "Hostname": "", "Domainname": "", "User": c.user or "",
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": c.env, "Cmd": c.cmd, "Image": "", "Volumes": _set(c.volumes),
        "WorkingDir": c.working_dir or "", "Entrypoint": c.entrypoint, "OnBuild": c.on_build,
        "Labels": c.labels,
    }  # fmt: skip
    if c.exposed_ports:
        config["ExposedPorts"] = _set(c.exposed_ports)
    if c.stop_signal:
        config["StopSignal"] = c.stop_signal
    if c.healthcheck is not None:
        config["Healthcheck"] = _healthcheck_json(c.healthcheck)
    if c.shell:
        config["Shell"] = c.shell
    comment = cfg.history[-1].comment if cfg.history else ""
    return {
        "Id": i.id,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Parent": i.parent,
        "Comment": comment or "",
        "Created": cfg.created or i.created,
        "DockerVersion": "",
        "Author": cfg.author or "",
        "Config": config,
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Size": i.size,
        "GraphDriver": {"Name": "overlayfs", "Data": graph or None},
        "RootFS": {"Type": "layers", "Layers": list(cfg.rootfs_diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _healthcheck_json(h: Any) -> dict[str, Any]:
    fields = {
        "Test": h.test,
        "Interval": h.interval,
        "Timeout": h.timeout,
        "StartPeriod": h.start_period,
        "StartInterval": h.start_interval,
        "Retries": h.retries,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _set(keys: list[str] | None) -> dict[str, dict] | None:
    return {k: {} for k in keys} if keys else None


def _image_matches(row: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Apply the filters; a `reference` filter also narrows RepoTags/RepoDigests to the
    references that match, as moby does (`docker images repo` shows only repo's tags)."""
    for key, values in filters.items():
        if key == "reference":
            row["RepoTags"] = [t for t in row["RepoTags"] if _reference_matches(values, t)]
            row["RepoDigests"] = [d for d in row["RepoDigests"] if _reference_matches(values, d)]
            if not (row["RepoTags"] or row["RepoDigests"]):
                return False
        elif key == "dangling":
            dangling = not row["RepoTags"]
            if any(v.lower() in ("true", "1") for v in values) != dangling:
                return False
        elif key == "label":
            labels = row["Labels"] or {}
            for v in values:
                k, eq, val = v.partition("=")
                if k not in labels or (eq and labels[k] != val):
                    return False
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return True


def _reference_matches(patterns: list[str], ref: str) -> bool:
    """moby's FamiliarMatch: the pattern against "name:tag" and against "name"."""
    name = ref.split("@", 1)[0]
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return any(_glob_match(p, ref) or _glob_match(p, name) for p in patterns)


def _glob_match(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
