"""SIGHUP: read the config file again and apply what can change while running.

What reloads (dockerd's reloadable keys, plus the log level and the default
log driver): ``debug``/``log-level``, ``registry-mirrors``, ``insecure-registries``,
``max-concurrent-downloads``, ``log-driver``/``log-opts`` (for containers
created from now on), ``live-restore``, ``shutdown-timeout``. Anything else
in the file (hosts, data-root, ...) needs a restart and is left as it is.

The new file is checked whole first: a file that does not parse, has an
unknown key, repeats a flag or holds a bad value changes nothing, and the
log says why. A reload that applied is published as a ``daemon reload``
event whose attributes are the settings after it, as dockerd's.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from freight.daemon.config import DaemonConfig, from_args
from freight.errors import FreightError
from freight.services import events, logdrivers
from freight.services.registries import Registries, RegistryOptions

if TYPE_CHECKING:
    from freight.daemon.wiring import Daemon

log = logging.getLogger("freightd")

RELOADABLE = (
    "log_level",
    "debug",
    "registry_mirrors",
    "insecure_registries",
    "max_concurrent_downloads",
    "log_driver",
    "log_opts",
    "live_restore",
    "shutdown_timeout",
)


def reload(daemon: Daemon, args: argparse.Namespace) -> bool:
    """Re-read ``--config-file`` and apply it; False (and a logged reason) if it is bad."""
    current = daemon.cfg or DaemonConfig()
    if not args.config_file:
        log.info("SIGHUP: no --config-file to reload")
        return False
    try:
        fresh = from_args(args)
        logdrivers.validate(fresh.log_driver, fresh.log_opts)
        Registries(registry_options(fresh))  # checks the insecure entries
    except FreightError as e:
        log.error("SIGHUP: not reloading the configuration, keeping the current one: %s", e)
        return False
    updated = replace(current, **{name: getattr(fresh, name) for name in RELOADABLE})
    apply(daemon, updated)
    log.info("SIGHUP: configuration reloaded from %s", args.config_file)
    events.publish_daemon_reload(daemon.containers.events, attributes(updated))
    return True


def apply(daemon: Daemon, cfg: DaemonConfig) -> None:
    daemon.cfg = cfg
    set_log_level(cfg.log_level)
    daemon.containers.log_defaults = logdrivers.LogDefaults(cfg.log_driver, dict(cfg.log_opts))
    if daemon.registries is not None:
        daemon.registries.options = registry_options(cfg, daemon.registries.options)


def registry_options(cfg: DaemonConfig, base: RegistryOptions | None = None) -> RegistryOptions:
    return replace(
        base or RegistryOptions(),
        insecure=list(cfg.insecure_registries),
        mirrors=list(cfg.registry_mirrors),
        max_concurrent_downloads=cfg.max_concurrent_downloads,
    )


def set_log_level(level: str) -> None:
    logging.getLogger().setLevel(python_level(level))


def python_level(level: str) -> str:
    return {"warn": "WARNING", "fatal": "CRITICAL"}.get(level, level.upper())


def attributes(cfg: DaemonConfig) -> dict[str, str]:
    """The event's attributes, as dockerd spells them (lists as Go prints them: [a b])."""
    return {
        "debug": str(cfg.log_level == "debug").lower(),
        "default-runtime": cfg.default_runtime,
        "insecure-registries": _go_list(cfg.insecure_registries),
        "live-restore": str(cfg.live_restore).lower(),
        "log-driver": cfg.log_driver,
        "log-level": cfg.log_level,
        "max-concurrent-downloads": str(cfg.max_concurrent_downloads),
        "registry-mirrors": _go_list(cfg.registry_mirrors),
        "shutdown-timeout": str(cfg.shutdown_timeout),
    }


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"
