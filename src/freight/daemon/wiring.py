"""Builds the running daemon from its config: stores → services → routes → server."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from freight.apiserver.http import ApiServer
from freight.apiserver.router import Router
from freight.apiserver.routes_archive import ArchiveRoutes
from freight.apiserver.routes_build import BuildRoutes
from freight.apiserver.routes_commit import CommitRoutes
from freight.apiserver.routes_containers import ContainerRoutes
from freight.apiserver.routes_distribution import DistributionRoutes
from freight.apiserver.routes_events import EventRoutes
from freight.apiserver.routes_exec import ExecRoutes
from freight.apiserver.routes_images import ImageRoutes
from freight.apiserver.routes_networks import NetworkRoutes
from freight.apiserver.routes_observe import ObserveRoutes
from freight.apiserver.routes_prune import PruneRoutes
from freight.apiserver.routes_system import SystemRoutes
from freight.apiserver.routes_volumes import VolumeRoutes
from freight.builder.engine import Builder
from freight.content import ContentStore
from freight.daemon.config import DaemonConfig
from freight.daemon.listeners import server_options
from freight.errors import InvalidArgument
from freight.metadata.store import MetadataStore
from freight.services import logdrivers, seccompprofile, userns
from freight.services.commit import thaw_interrupted
from freight.services.containers import ContainerService
from freight.services.events import EventBus
from freight.services.execs import ExecService
from freight.services.health import HealthMonitor
from freight.services.images import ImageService
from freight.services.logdrivers import LogDefaults
from freight.services.networking import start_networking
from freight.services.networks import NetworkService
from freight.services.pull import PullService
from freight.services.push import PushService
from freight.services.registries import Registries, RegistryOptions
from freight.services.tasks import ForkServer
from freight.services.volumes import VolumeService
from freight.snapshots import OverlaySnapshotter

log = logging.getLogger("freightd")


@dataclass
class Daemon:
    containers: ContainerService
    meta: MetadataStore
    networks: NetworkService | None = None
    cfg: DaemonConfig | None = None  # what the daemon runs with now (SIGHUP replaces it)
    registries: Registries | None = None
    daemon_id: str = ""
    server: ApiServer | None = None

    @property
    def live_restore(self) -> bool:
        return self.cfg is not None and self.cfg.live_restore

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
        if not self.live_restore:
            # A stop without --live-restore stops the containers (a crash does not).
            timeout = self.cfg.shutdown_timeout if self.cfg is not None else 15
            await self.containers.shutdown(timeout)
        self.containers.tasks.close()
        if self.networks is not None:
            await asyncio.to_thread(self.networks.close)
        self.containers.mounts.volumes.close()
        if self.containers.tasks.forkserver is not None:
            await asyncio.to_thread(self.containers.tasks.forkserver.stop)
        self.meta.close()


def available_runtimes() -> dict[str, str]:
    runtimes = {"freight": f"{sys.executable} -m freight.runtime"}
    runc = shutil.which("runc")
    if runc:
        runtimes["runc"] = runc
    return runtimes


def security_options(cfg: DaemonConfig, containers: ContainerService) -> tuple[str, ...]:
    """What /info's SecurityOptions lists, in dockerd's order and words."""
    profile = cfg.seccomp_profile or "builtin"
    options = [f"name=seccomp,profile={profile}"]
    if cgroup_version() == "2":
        options.append("name=cgroupns")  # containers get a private cgroup namespace
    if containers.userns_remap is not None:
        options.append("name=userns")
    return tuple(options)


def seccomp_profile_text(path: str | None) -> str | None:
    """freightd --seccomp-profile: the file's JSON, checked now; "unconfined" and
    "builtin" (Docker's default) as dockerd takes them; None for Docker's default."""
    if path in (None, "", seccompprofile.BUILTIN):
        return None
    if path == seccompprofile.UNCONFINED:
        return path
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {e.strerror}") from None
    seccompprofile.load_profile(text)
    return text


def cgroup_version() -> str:
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


async def build(cfg: DaemonConfig) -> Daemon:
    runtimes = available_runtimes()
    if cfg.default_runtime not in runtimes:
        raise InvalidArgument(f"default runtime {cfg.default_runtime!r} is not available")
    seccomp = seccomp_profile_text(cfg.seccomp_profile)  # bad settings fail before anything runs
    remap = await asyncio.to_thread(userns.parse_remap, cfg.userns_remap)  # may add dockremap
    log_defaults = LogDefaults(cfg.log_driver, dict(cfg.log_opts))
    logdrivers.validate(log_defaults.driver, log_defaults.opts)
    for d in (
        cfg.data_root,
        cfg.exec_root,
        cfg.exec_root / "containers",
        cfg.exec_root / "runtime",
    ):
        d.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(cfg.data_root / "metadata.db")
    content = ContentStore(cfg.data_root / "content")
    snapshots = OverlaySnapshotter(cfg.data_root / "snapshots")
    daemon_id = hashlib.sha256(str(cfg.data_root).encode()).hexdigest()[:36]
    events = EventBus(daemon_id=daemon_id)  # one per daemon: services publish, GET /events reads
    images = ImageService(content, snapshots, meta, events=events)
    forkserver = ForkServer(cfg.exec_root)
    await asyncio.to_thread(forkserver.start)
    volumes = VolumeService(cfg.data_root / "volumes", events=events)
    containers = ContainerService(
        meta,
        images,
        cfg.data_root,
        cfg.exec_root,
        tuple(runtimes),
        cfg.cgroup_parent,
        forkserver,
        volumes=volumes,
        events=events,
    )
    containers.log_defaults, containers.seccomp_profile = log_defaults, seccomp
    containers.userns_remap = remap
    await asyncio.to_thread(images.collect_garbage)
    networks = await start_networking(
        containers,
        cfg.data_root,
        cfg.exec_root,
        cfg.bridge,
        cfg.bip,
        cfg.default_address_pools,
        cfg.dns,
    )
    containers.restore()
    thaw_interrupted(containers.list())  # a commit cut short by a kill left them frozen
    await asyncio.to_thread(networks.reconcile)

    router = Router()
    ContainerRoutes(containers, cfg.default_runtime).register(router)
    ObserveRoutes(containers).register(router)  # stats, top, pause, unpause, rename
    image_routes = ImageRoutes(images)
    registries = Registries(
        RegistryOptions(
            insecure=cfg.insecure_registries,
            mirrors=cfg.registry_mirrors,
            max_concurrent_downloads=cfg.max_concurrent_downloads,
        )
    )
    puller = PullService(images, registries)
    DistributionRoutes(
        puller,
        PushService(images, registries),
        registries,
        image_routes.create,
    ).register(router)  # before ImageRoutes: its /images/create takes fromImage
    image_routes.register(router)
    VolumeRoutes(volumes).register(router)
    ArchiveRoutes(containers).register(router)
    execs = ExecService(containers, events)
    HealthMonitor(containers, execs)  # probes; the running containers' start again now
    ExecRoutes(execs).register(router)
    EventRoutes(events).register(router)
    NetworkRoutes(networks, containers).register(router)
    daemon = Daemon(containers, meta, networks, cfg, registries, daemon_id)
    SystemRoutes(
        containers,
        images,
        cfg.data_root,
        cfg.default_runtime,
        runtimes,
        cgroup_version(),
        daemon_id,
        registries=registries,
        live_restore=lambda: daemon.live_restore,
        security_options=security_options(cfg, containers),
    ).register(router)
    CommitRoutes(containers).register(router)
    build_routes = BuildRoutes(Builder(containers, puller, cfg.data_root, cfg.exec_root))
    build_routes.clean_leftovers()
    build_routes.register(router)
    prune_routes = PruneRoutes(containers)
    prune_routes.register(router)
    prune_routes.register_fallbacks(router)  # last: real volume/network routes win
    daemon.server = ApiServer(router, cfg.hosts, **server_options(cfg))  # TLS, socket group
    await containers.restarts.resume_at_start()  # restart policies at daemon start
    await daemon.server.start()
    return daemon
