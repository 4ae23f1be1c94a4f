"""RUN: a container from the step's parent image, its output in the build log,
its changes committed as the step's layer.

The container is an ordinary one (it shows in `ps -a` while it runs, as with
the legacy builder), created without the image's VOLUMEs (changes under a
VOLUME path stay in the layer, as BuildKit does) and with the step's
`--mount`s as HostConfig mounts:

    type=bind    context (or --from stage/image) path, read-only unless rw
                 (rw: a throwaway copy, as BuildKit discards the writes)
    type=cache   a directory under <data-root>/build-cache/<id>, kept across
                 builds; sharing=locked serialises its users
    type=tmpfs   a tmpfs
    type=secret  the secret (from --secret) in a 0400 file, bind-mounted read-only

Mount points the runtime had to create for these are left out of the layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from freight.archive import inroot
from freight.builder.instructions import Run, RunMount
from freight.builder.model import BuildFailed, Emit, Output, StepFailed
from freight.errors import ExecError, FreightError, NotFound
from freight.services.containers import ContainerService, CreateRequest
from freight.services.logs import LogQuery
from freight.services.model import ContainerConfig, HostSettings

MountSource = Callable[[str | None, ExitStack], Path]  # --from value (None: context) -> root


@dataclass
class RunSettings:
    network_mode: str
    extra_hosts: list[str]
    secrets: dict[str, bytes]
    cache_root: Path  # where type=cache directories live
    secrets_root: Path  # a private directory for secret files
    remove: bool
    force_remove: bool


class CacheLocks:
    """sharing=locked: one step at a time per cache id (across concurrent builds)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, cache_id: str) -> asyncio.Lock:
        return self._locks.setdefault(cache_id, asyncio.Lock())


def argv_of(run: Run, shell: list[str]) -> list[str]:
    return [*shell, *run.cmd] if run.prepend_shell else list(run.cmd)


async def run_step(
    containers: ContainerService,
    image_id: str,
    run: Run,
    argv: list[str],
    env: list[str],
    settings: RunSettings,
    mount_source: MountSource,
    locks: CacheLocks,
    emit: Emit,
) -> tuple[str, list[str]]:
    """Run the step's container to its end; returns (container id, mount stubs).

    The caller commits the container's snapshot and then calls `finish`.
    Raises StepFailed (non-zero exit) or BuildFailed (could not start).
    """
    with ExitStack() as stack:
        mounts, tmpfs, stubs = _mounts(run.mounts, settings, mount_source, stack)
        held = [locks.get(m.id or m.target) for m in run.mounts if _locked(m)]
        for lock in held:
            await lock.acquire()
        try:
            cid = await _create(containers, image_id, argv, env, run, settings, mounts, tmpfs)
            try:
                await _start_and_follow(containers, cid, argv, settings, emit)
            except asyncio.CancelledError:
                # A cancelled build (client gone, /build/cancel): the step's container
                # must not outlive it.
                await asyncio.shield(_remove(containers, cid))
                raise
        finally:
            for lock in held:
                lock.release()
    return cid, stubs


async def finish(containers: ContainerService, cid: str, ok: bool, settings: RunSettings) -> None:
    if (ok and settings.remove) or settings.force_remove:
        await _remove(containers, cid)


async def _remove(containers: ContainerService, cid: str) -> None:
    with contextlib.suppress(FreightError):
        await containers.remove(cid, force=True)


def _locked(m: RunMount) -> bool:
    return m.type == "cache" and m.sharing == "locked"


async def _create(
    containers: ContainerService,
    image_id: str,
    argv: list[str],
    env: list[str],
    run: Run,
    settings: RunSettings,
    mounts: list[dict],
    tmpfs: dict[str, str],
) -> str:
    network = run.network or settings.network_mode
    network = {"default": "default", "none": "none", "host": "host"}.get(network, network)
    extra: dict = {"Mounts": mounts, "ExtraHosts": list(settings.extra_hosts)}
    if tmpfs:
        extra["Tmpfs"] = tmpfs
    config = ContainerConfig(
        image=image_id,
        cmd=argv,
        entrypoint=[],
        env=env,
        attach_stdout=True,
        attach_stderr=True,
    )
    host = HostSettings(network_mode=network, extra=extra)
    c, _ = await containers.create(CreateRequest("", config, host, image_volumes=False))
    return c.id


async def _start_and_follow(
    containers: ContainerService, cid: str, argv: list[str], settings: RunSettings, emit: Emit
) -> None:
    exited = containers.wait_future(cid, "next-exit")
    emit(Output(f" ---> Running in {cid[:12]}\n"))
    try:
        await containers.start(cid)
    except ExecError as e:
        exited.cancel()
        await finish(containers, cid, False, settings)
        raise BuildFailed(str(e)) from None
    async for entry in containers.logs(cid, LogQuery(follow=True)):
        emit(Output(entry.data.decode(errors="replace")))
    status = await exited
    if status.exit_code != 0:
        await finish(containers, cid, False, settings)
        raise StepFailed(_shown(argv), status.exit_code)


def _shown(argv: list[str]) -> str:
    return " ".join(argv)


# --mount ------------------------------------------------------------------------


def _mounts(
    specs: list[RunMount], settings: RunSettings, mount_source: MountSource, stack: ExitStack
) -> tuple[list[dict], dict[str, str], list[str]]:
    mounts: list[dict] = []
    tmpfs: dict[str, str] = {}
    for m in specs:
        target = posixpath.normpath(m.target)
        if m.type == "tmpfs":
            tmpfs[target] = f"size={m.size}" if m.size else ""
        elif m.type == "cache":
            mounts.append(_bind(_cache_dir(m, settings), target, readonly=m.readonly))
        elif m.type == "secret":
            source = _secret_file(m, settings, stack)
            if source is not None:
                mounts.append(_bind(source, target, readonly=True))
        elif m.type == "bind":
            mounts.append(_bind(_bind_source(m, mount_source, stack), target, m.readonly))
        else:
            raise BuildFailed(f"--mount=type={m.type} is not supported by this builder")
    stubs = [posixpath.normpath(m.target).lstrip("/") for m in specs]
    return mounts, tmpfs, stubs


def _bind(source: Path, target: str, readonly: bool) -> dict:
    return {"Type": "bind", "Source": str(source), "Target": target, "ReadOnly": readonly}


def _cache_dir(m: RunMount, settings: RunSettings) -> Path:
    name = hashlib.sha256((m.id or m.target).encode()).hexdigest()[:32]
    path = settings.cache_root / name
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, m.mode if m.mode is not None else 0o755)
        os.chown(path, m.uid or 0, m.gid or 0)
    return path


def _secret_file(m: RunMount, settings: RunSettings, stack: ExitStack) -> Path | None:
    secret_id = m.id or posixpath.basename(m.target)
    data = settings.secrets.get(secret_id)
    if data is None:
        if m.required:
            raise BuildFailed(f"secret {secret_id}: not found")
        return None
    settings.secrets_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=settings.secrets_root)
    stack.callback(os.unlink, name)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(name, m.mode if m.mode is not None else 0o400)
    os.chown(name, m.uid or 0, m.gid or 0)
    return Path(name)


def _bind_source(m: RunMount, mount_source: MountSource, stack: ExitStack) -> Path:
    root = mount_source(m.from_, stack)
    source = m.source or "/"
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        resolved = inroot.resolve(fd, source)  # a symlink in the source stays inside it
    finally:
        os.close(fd)
    path = root / resolved.lstrip("/")
    if not path.exists():
        raise NotFound(f"failed to mount {source}: not found in the mount source")
    if m.readonly:
        return path
    copy = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="freight-rwbind-")))
    target = copy / "src"
    if path.is_dir():
        shutil.copytree(path, target, symlinks=True)
    else:
        shutil.copy2(path, target)
    return target
