"""freightd: the composition root. Reads settings, takes the data-root lock,
builds the stores and services, serves the Engine API until SIGTERM/SIGINT.

Signals: SIGTERM/SIGINT stop the daemon; without --live-restore the running
containers are stopped first (daemon.wiring.Daemon.close), with it they keep
running and the next daemon finds them again. A crash (SIGKILL) leaves them
running either way. SIGHUP reloads the config file (daemon.reload).

Data-root layout (persistent)::

    <data-root>/
        freightd.lock        flock'ed while a daemon owns this root
        metadata.db          images, tags, containers (metadata.store)
        content/             blobs by digest (content.store)
        snapshots/           layer and container filesystems (snapshots)
        containers/<id>/     <id>-json.log, hostname, hosts, resolv.conf

Exec-root layout (runtime, tmpfs): freight.sock, freightd.pid,
runtime/ (runtime state), containers/<id>/ (bundles, see services.tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from freight import __version__
from freight.daemon.config import DaemonConfig, load
from freight.errors import FreightError, Unavailable

log = logging.getLogger("freightd")


@dataclass
class DataRootLock:
    """An exclusive flock on <data-root>/freightd.lock; held for the daemon's life."""

    path: Path
    fd: int = -1

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = -1
            raise Unavailable(
                f"another freightd (pid {holder}) is already using data root {self.path.parent}: "
                "stop it first (freight daemon stop), or give this one its own --data-root"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def main(argv: list[str] | None = None) -> int:
    # A SIGHUP during start-up would kill us: note it until serve() installs the reload.
    # (A Python handler, not SIG_IGN: children exec'd meanwhile get the default back.)
    signal.signal(signal.SIGHUP, lambda *_: log.warning("SIGHUP while starting: not reloaded"))
    try:
        cfg, args = load(sys.argv[1:] if argv is None else argv)
    except FreightError as e:
        print(f"freightd: {e}", file=sys.stderr)
        return 1
    if args.version:
        print(f"Freight daemon version {__version__}")
        return 0
    _setup_logging(cfg.log_level)
    try:
        # Before the lock and the stores: a bad TLS or -H setup fails at once.
        from freight.daemon.listeners import activated_hosts, server_options

        cfg.hosts = activated_hosts(cfg.hosts)  # -H fd://: systemd's sockets
        server_options(cfg)
    except FreightError as e:
        print(f"freightd: {e}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("freightd: needs to run as root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    lock = DataRootLock(cfg.data_root / "freightd.lock")
    try:
        lock.acquire()
        return asyncio.run(serve(cfg, args))
    except FreightError as e:
        print(f"freightd: {e}", file=sys.stderr)
        return 1
    finally:
        lock.release()


async def serve(cfg: DaemonConfig, args: argparse.Namespace | None = None) -> int:
    from freight.daemon.reload import reload
    from freight.daemon.wiring import build

    daemon = await build(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args is not None:
        loop.add_signal_handler(signal.SIGHUP, reload, daemon, args)
    cfg.pid_path.parent.mkdir(parents=True, exist_ok=True)
    cfg.pid_path.write_text(f"{os.getpid()}\n")
    log.info("freightd %s listening on %s", __version__, ", ".join(daemon.server.addresses))
    try:
        await stop.wait()
        if daemon.live_restore:
            log.info("shutting down (live restore: containers keep running)")
        else:
            log.info("shutting down: stopping the running containers")
    finally:
        await daemon.close()
        cfg.pid_path.unlink(missing_ok=True)
    return 0


def _setup_logging(level: str) -> None:
    from freight.daemon.reload import python_level

    logging.basicConfig(
        level=python_level(level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    sys.exit(main())
