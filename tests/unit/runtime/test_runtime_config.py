"""freight.runtime.config: spec → validated ContainerConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.errors import InvalidArgument
from freight.linux import syscalls as sc
from freight.linux.mountopts import parse_mount_options
from freight.oci.runtime_spec import (
    Capabilities,
    ConsoleSize,
    Linux,
    Mount,
    Namespace,
    Process,
    Root,
    Spec,
)
from freight.runtime.config import convert, process_config


def spec(**kw: object) -> Spec:
    return Spec(
        process=Process(args=["sh"], cwd=str(kw.get("cwd", "/"))),
        root=Root("rootfs"),
        hostname=kw.get("hostname"),  # type: ignore[arg-type]
        mounts=list(kw.get("mounts", [])),  # type: ignore[call-overload]
        linux=Linux(namespaces=[Namespace(t) for t in kw.get("ns", ("mount", "pid", "uts"))]),  # type: ignore[attr-defined]
    )


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    flags, prop, data = parse_mount_options(["nosuid", "ro", "rbind", "rprivate", "mode=755"])
    assert flags == sc.MS_NOSUID | sc.MS_RDONLY | sc.MS_BIND | sc.MS_REC
    assert prop == (sc.MS_PRIVATE | sc.MS_REC,)
    assert data == "mode=755"


def test_rw_clears_ro() -> None:
    assert parse_mount_options(["ro", "rw"])[0] == 0


def test_relative_bind_source_resolves_against_bundle(tmp_path: Path) -> None:
    cfg = convert("c", tmp_path, spec(mounts=[Mount("/etc/hosts", "bind", "hosts", ["rbind"])]))
    assert cfg.mounts[0].source == str(tmp_path.resolve() / "hosts")
    assert cfg.mounts[0].is_bind
    assert cfg.rootfs == str(tmp_path.resolve() / "rootfs")


def test_namespaces_become_flags_and_joins(tmp_path: Path) -> None:
    s = spec()
    s.linux.namespaces.append(Namespace("network", "/proc/1/ns/net"))  # type: ignore[union-attr]
    cfg = convert("c", tmp_path, s)
    assert cfg.unshare_flags == sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWUTS
    assert cfg.join == [(sc.CLONE_NEWNET, "/proc/1/ns/net")]
    assert cfg.cgroups_path == "/freight/c"


@pytest.mark.parametrize(
    "bad",
    [
        {"cwd": "relative"},
        {"ns": ("pid",)},  # no mount namespace
        {"hostname": "h", "ns": ("mount",)},  # hostname without uts
        {"ns": ("mount", "bogus")},
    ],
)
def test_invalid_specs_are_refused(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(InvalidArgument):
        convert("c", tmp_path, spec(**bad))


def test_capabilities_become_masks(tmp_path: Path) -> None:
    s = spec()
    s.process.capabilities = Capabilities(["CAP_KILL"], ["CAP_KILL"], [], [], [])  # type: ignore[union-attr]
    caps = convert("c", tmp_path, s).process.caps
    assert caps is not None and caps.bounding == 1 << 5 and caps.permitted == 0


def test_unknown_capability_is_refused(tmp_path: Path) -> None:
    s = spec()
    s.process.capabilities = Capabilities(["CAP_NOPE"], [], [], [], [])  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument, match="CAP_NOPE"):
        convert("c", tmp_path, s)


def test_exec_process_with_a_terminal_and_console_size() -> None:
    p = process_config(Process(args=["sh"], terminal=True, console_size=ConsoleSize(24, 80)))
    assert p.terminal and p.console_size == (24, 80)
    assert (
        process_config(Process(args=["sh"], console_size=ConsoleSize(24, 80))).console_size is None
    )
    with pytest.raises(InvalidArgument):
        process_config(Process(args=["sh"], terminal=True, console_size=ConsoleSize(70000, 80)))
    with pytest.raises(InvalidArgument):
        process_config(Process(args=[]))
