"""seccomp from inside containers: Docker's default profile, custom profiles, unconfined.

Each test runs a small busybox script in a container and asserts on what the
kernel answered. busybox has no `keyctl`/`personality` applets, so the probes
use applets whose syscalls the profile decides: `unshare` (unshare(2)),
`mount` (mount(2)), `linux64 -R` and `linux32` (personality(2)), `nsenter` (setns(2)) and
`chroot`.
"""

from __future__ import annotations

import json
from pathlib import Path

PROFILE = Path(__file__).parents[2] / "src/freight/services/seccomp-default.json"


def _run(freightd, *args: str) -> tuple[int, str]:
    result = freightd.cli("run", "--rm", *args)
    return result.returncode, (result.stdout + result.stderr).decode()


def test_default_profile_is_applied(freightd):
    """Attack: a process in a default container asks for the seccomp mode it runs in
    hoping for none. Safe outcome: /proc/self/status shows Seccomp: 2 (filter)."""
    code, out = _run(freightd, "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert code == 0, out
    assert "Seccomp:\t2" in out


def test_unshare_is_blocked_with_eperm(freightd):
    """Attack: create a new user namespace to regain capabilities (a classic first step of
    kernel exploits). Safe outcome: unshare(2) fails with EPERM (Operation not permitted)."""
    code, out = _run(freightd, "busybox", "unshare", "-U", "true")
    assert code != 0
    assert "Operation not permitted" in out


def test_personality_variants_are_filtered(freightd):
    """Attack: switch personality to disable ASLR (ADDR_NO_RANDOMIZE), making exploits
    reliable. Safe outcome: that personality(2) value gets EPERM, while the values the
    profile allows (linux32 = PER_LINUX32) still work."""
    code, out = _run(freightd, "busybox", "linux64", "-R", "true")
    assert code != 0 and "Operation not permitted" in out, out
    code, out = _run(freightd, "busybox", "linux32", "uname", "-m")
    assert code == 0, out
    assert out.strip() in ("i686", "i386")


def test_normal_syscalls_still_work(freightd):
    """Attack: none; the filter must not break ordinary programs. Safe outcome: files,
    pipes, processes, sockets and time all work under the default profile."""
    script = "echo hi > /tmp/f && cat /tmp/f | wc -c && sleep 0.01 && date +%Y >/dev/null && nc -h 2>&1 | head -1 >/dev/null && echo ok"
    code, out = _run(freightd, "busybox", "sh", "-c", script)
    assert code == 0, out
    assert out.split() == ["3", "ok"]


def test_mount_without_caps_is_blocked(freightd):
    """Attack: mount a fresh proc or tmpfs to get around masked paths. Safe outcome:
    mount(2) is refused (EPERM), the filter blocks it without CAP_SYS_ADMIN."""
    code, out = _run(freightd, "busybox", "mount", "-t", "tmpfs", "none", "/tmp")
    assert code != 0
    assert "permission denied" in out.lower() or "Operation not permitted" in out, out


def test_cap_sys_admin_opens_the_capability_conditional_rules(freightd):
    """Attack: none; Docker's profile opens mount/unshare/setns to CAP_SYS_ADMIN holders.
    Safe outcome: with --cap-add SYS_ADMIN the rule is resolved in and mount works,
    still under a filter (Seccomp: 2)."""
    script = "mount -t tmpfs none /tmp && grep Seccomp: /proc/self/status"
    code, out = _run(freightd, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", script)
    assert code == 0, out
    assert "Seccomp:\t2" in out


def test_unconfined_lifts_the_filter(freightd):
    """Attack: none; an operator opts out. Safe outcome: with seccomp=unconfined the process
    has no filter (Seccomp: 0) and personality(ADDR_NO_RANDOMIZE) succeeds."""
    code, out = _run(
        freightd, "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c",
        "grep Seccomp: /proc/self/status && linux64 -R true && echo personality-ok",
    )  # fmt: skip
    assert code == 0, out
    assert "Seccomp:\t0" in out and "personality-ok" in out


def test_privileged_has_no_filter(freightd):
    """Attack: none; --privileged means no seccomp, as in Docker. Safe outcome: Seccomp: 0."""
    code, out = _run(freightd, "--privileged", "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert code == 0, out
    assert "Seccomp:\t0" in out


def _allowlist_profile(tmp_path: Path, drop: set[str], **rules) -> Path:
    """Docker's allow list (rules and conditions kept) minus `drop`, default ERRNO,
    plus extra rules."""
    base = json.loads(PROFILE.read_text())
    allowed = []
    for rule in base["syscalls"]:
        names = [n for n in rule["names"] if n not in drop]
        if names:
            allowed.append({**rule, "names": names})
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": rules.pop("default_errno", 1),
        "archMap": base["archMap"],
        "syscalls": [*allowed, *rules.pop("extra", [])],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    return path


def test_custom_allowlist_profile_blocks_what_it_omits(freightd, tmp_path):
    """Attack: a program uses a syscall the operator's allow-list profile leaves out
    (mkdir/mkdirat). Safe outcome: it gets the profile's default errno (EPERM) while
    every allowed syscall works."""
    profile = _allowlist_profile(tmp_path, {"mkdir", "mkdirat"})
    code, out = _run(
        freightd, "--security-opt", f"seccomp={profile}", "busybox", "sh", "-c",
        "echo x > /tmp/f && cat /tmp/f; mkdir /tmp/d",
    )  # fmt: skip
    assert code != 0
    assert out.startswith("x\n") and "Operation not permitted" in out, out


def test_errno_ret_is_honoured(freightd, tmp_path):
    """Attack: none; a rule's errnoRet must be what the process sees. Safe outcome: a rule
    SCMP_ACT_ERRNO errnoRet 13 for mkdirat makes mkdir fail with EACCES, and
    defaultErrnoRet 38 makes an unlisted syscall fail with ENOSYS."""
    profile = _allowlist_profile(
        tmp_path, {"mkdir", "mkdirat", "rmdir"},
        extra=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
        default_errno=38,
    )  # fmt: skip
    code, out = _run(
        freightd, "--security-opt", f"seccomp={profile}", "busybox", "sh", "-c",
        "mkdir /tmp/d; rmdir /tmp; true",
    )  # fmt: skip
    assert code == 0, out
    assert "mkdir: can't create directory '/tmp/d': Permission denied" in out
    assert "Function not implemented" in out  # rmdir: ENOSYS


def test_exec_runs_under_the_containers_filter(freightd):
    """Attack: `exec` a new process into a running container to get around its filter.
    Safe outcome: the exec'd process has the same filter (Seccomp: 2, unshare EPERM)."""
    name = "seccomp-exec-probe"
    started = freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "30")
    assert started.returncode == 0, started.stderr.decode()
    try:
        result = freightd.cli(
            "exec", name, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true"
        )
        out = (result.stdout + result.stderr).decode()
        assert "Seccomp:\t2" in out and "Operation not permitted" in out, out
    finally:
        freightd.cli("rm", "-f", name)


def test_bad_profiles_are_rejected_at_create(freightd, tmp_path):
    """Attack: a broken profile that would leave the container unfiltered if ignored.
    Safe outcome: create fails naming the problem; no container is left behind."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_NOPE", "syscalls": []}')
    before = freightd.cli("ps", "-aq").stdout
    result = freightd.cli("run", "--rm", "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert result.returncode != 0
    assert "SCMP_ACT_NOPE" in result.stderr.decode()
    missing = freightd.cli(
        "run", "--rm", "--security-opt", "seccomp=/nonexistent.json", "busybox", "true"
    )
    assert "opening seccomp profile (/nonexistent.json) failed" in missing.stderr.decode()
    assert freightd.cli("ps", "-aq").stdout == before
