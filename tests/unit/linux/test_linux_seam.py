"""freight.linux: capability table, masks and the recording fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.linux import capabilities, syscalls
from freight.linux.seam import LinuxSyscalls, RecordingSyscalls, Syscalls


def test_docker_default_caps_mask() -> None:
    assert capabilities.to_mask(capabilities.DOCKER_DEFAULT_CAPS) == 0xA80425FB


def test_names_are_normalized() -> None:
    assert capabilities.to_mask(["chown", "CAP_KILL", "NET_RAW"]) == (1 << 0) | (1 << 5) | (1 << 13)


def test_unknown_capability() -> None:
    with pytest.raises(ValueError, match="CAP_BOGUS"):
        capabilities.to_mask(["CAP_BOGUS"])


def test_capget_reads_our_own_sets() -> None:
    eff, perm, _ = syscalls.capget()
    assert eff & ~perm == 0  # effective is always a subset of permitted


def test_fake_records_and_remembers() -> None:
    fake = RecordingSyscalls()
    fake.mkdir_all("/r/a", 0o755)
    fake.touch("/r/f")
    fake.mount("proc", "/r/proc", "proc", syscalls.MS_NOSUID, None)
    assert fake.kind("/r/a") == "dir" and fake.kind("/r/f") == "file" and fake.kind("/x") is None
    assert fake.named("mount") == [("mount", "proc", "/r/proc", "proc", syscalls.MS_NOSUID, None)]


def test_both_implementations_satisfy_the_protocol() -> None:
    implementations: list[Syscalls] = [LinuxSyscalls(), RecordingSyscalls()]
    assert all(callable(s.mount) for s in implementations)


def test_real_mount_errors_carry_errno_and_path(tmp_path: Path) -> None:
    with pytest.raises(OSError) as e:
        syscalls.mount("none", str(tmp_path / "missing"), "tmpfs", 0, None)
    assert e.value.errno is not None and e.value.filename == str(tmp_path / "missing")
