"""Escape attempts through mounts, volumes, working directories and build contexts:
the container (or the image, or the build context) controls the paths; the
daemon and the runtime must resolve them inside the container's root.
Each test states the attack and the safe outcome.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import tarfile

import pytest
from sec_images import Entry, canary_dir, import_image, listing, output


@pytest.fixture
def canary():
    path = canary_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cleanup(freightd):
    """Names of containers and volumes to remove after the test."""
    made: dict[str, list[str]] = {"containers": [], "volumes": []}
    yield made
    if made["containers"]:
        freightd.cli("rm", "-f", *made["containers"])
    if made["volumes"]:
        freightd.cli("volume", "rm", "-f", *made["volumes"])


def _run(freightd, *args: str) -> tuple[int, str]:
    result = freightd.cli("run", "--rm", *args)
    return result.returncode, output(result)


def test_volume_path_swapped_for_symlink(freightd, canary, cleanup, tmp_path):
    """Attack: container A shares volume V and plants V/sub -> <host dir> (absolute), then
    container B mounts V at /data and a bind at /data/sub: a mount made through the host's
    view of the link would cover the host directory. Safe outcome: the bind lands on B's
    own <host dir> (inside its root), B sees the bind's file there, the host dir is
    untouched."""
    vol = f"secvol-{secrets.token_hex(3)}"
    cleanup["volumes"].append(vol)
    code, out = _run(freightd, "-v", f"{vol}:/data", "busybox", "ln", "-s", canary, "/data/sub")
    assert code == 0, out
    (tmp_path / "from-bind").write_text("bind\n")
    code, out = _run(
        freightd, "-v", f"{vol}:/data", "-v", f"{tmp_path}:/data/sub",
        "busybox", "cat", f"{canary}/from-bind",
    )  # fmt: skip
    assert code == 0 and out == "bind\n", out
    assert listing(canary) == ["HOSTSECRET"]


def test_tmpfs_through_relative_symlink(freightd, canary):
    """Attack: the image has /mnt/up -> ../../../../.. (climbing); --tmpfs /mnt/up/<host dir>
    asks the runtime to mount there. Safe outcome: `..` stops at the container's root, the
    tmpfs covers the container's <host dir> (empty inside), the host's is untouched."""
    name, out = import_image(freightd, [Entry("mnt", "dir", mode=0o755),
                                        Entry("mnt/up", "symlink", target="../" * 8)])  # fmt: skip
    assert name, out
    code, out = _run(
        freightd, "--tmpfs", f"/mnt/up{canary}", name,
        "/bin/busybox", "sh", "-c", f"/bin/busybox grep ' {canary} ' /proc/mounts",
    )  # fmt: skip
    assert code == 0 and "tmpfs" in out, out
    assert listing(canary) == ["HOSTSECRET"]


def test_volume_copy_up_through_image_symlink(freightd, canary, cleanup):
    """Attack: the image's /data is a symlink to <host dir>; a new named volume mounted at
    /data is filled from the image (copy-up), which through the host's view would copy
    the host's files (HOSTSECRET) into the volume. Safe outcome: the link resolves in the
    image, which has no such directory: the volume holds nothing of the host."""
    name, out = import_image(freightd, [Entry("data", "symlink", target=canary)])
    assert name, out
    vol = f"secvol-{secrets.token_hex(3)}"
    cleanup["volumes"].append(vol)
    code, out = _run(freightd, "-v", f"{vol}:/data", name, "/bin/busybox", "ls", "-A", "/data")
    assert code == 0, out
    assert "HOSTSECRET" not in out
    result = freightd.cli("volume", "inspect", vol)
    mountpoint = json.loads(result.stdout)[0]["Mountpoint"]
    assert "HOSTSECRET" not in os.listdir(mountpoint)


def test_workdir_symlink_to_root(freightd):
    """Attack: the image's /work is a symlink to "/" and to "../../..", used as -w. Safe
    outcome: the process starts in the container's own root (pwd -P prints "/", and the
    directory holds the image's files, not the host's)."""
    name, out = import_image(freightd, [Entry("work", "symlink", target="/"),
                                        Entry("up", "symlink", target="../../..")])  # fmt: skip
    assert name, out
    marker = f"/freight-host-only-{secrets.token_hex(3)}"
    os.mkdir(marker)
    try:
        for wd in ("/work", "/up"):
            code, out = _run(freightd, "-w", wd, name, "/bin/busybox", "sh", "-c", "pwd -P; ls")
            assert code == 0, out
            lines = out.split()
            assert lines[0] == "/" and "bin" in lines and marker.lstrip("/") not in lines, out
    finally:
        os.rmdir(marker)


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7, 8])
def test_workdir_through_proc_fd_is_refused(freightd, fd):
    """Attack: -w /proc/self/fd/N, hoping N is a directory fd the runtime still holds on
    the host (runc's CVE-2024-21626): the process would start outside the root. Safe
    outcome: refused with an error naming the working directory, for run and exec."""
    code, out = _run(freightd, "-w", f"/proc/self/fd/{fd}", "busybox", "pwd")
    assert code != 0 and f"/proc/self/fd/{fd}" in out and "refused" in out, out


def test_exec_workdir_through_proc_fd_is_refused(freightd, cleanup):
    """Attack: exec -w /proc/self/fd/N and -w /proc/1/cwd/.. into a running container.
    Safe outcome: refused naming the directory; the container keeps running."""
    name = f"secwd-{secrets.token_hex(3)}"
    cleanup["containers"].append(name)
    result = freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert result.returncode == 0, output(result)
    for wd in ("/proc/self/fd/3", "/proc/1/cwd", "/proc/thread-self/root"):
        result = freightd.cli("exec", "-w", wd, name, "pwd")
        assert result.returncode != 0 and wd in output(result), output(result)
    assert freightd.cli("exec", name, "true").returncode == 0


def test_workdir_symlink_to_proc_fd(freightd):
    """Attack: the image's /wk is a symlink to /proc/self/fd/N (N = 3..9), so the refusal of
    a literal /proc path does not apply. Safe outcome: the process never has a cwd outside
    the root: either the start fails naming the directory, or `pwd -P` is a path inside."""
    entries = [Entry(f"wk{n}", "symlink", target=f"/proc/self/fd/{n}") for n in range(3, 10)]
    name, out = import_image(freightd, entries)
    assert name, out
    for n in range(3, 10):
        code, out = _run(freightd, "-w", f"/wk{n}", name, "/bin/busybox", "pwd", "-P")
        if code == 0:
            assert out.startswith("/") and "unreachable" not in out, out
        else:
            assert f"/wk{n}" in out, out


def _context(files: dict[str, bytes], links: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("link", ["abs", "rel"])
def test_build_context_symlink_out(freightd, canary, link):
    """Attack: a build context holding `abs -> <host dir>` and `rel -> ../../../<host dir>`,
    and a Dockerfile that COPYs abs/HOSTSECRET (or rel/HOSTSECRET) into the image. Safe
    outcome: the links resolve inside the context, where there is no such file: the build
    fails naming the path, and no image holds the host's secret."""
    dockerfile = f"FROM busybox\nCOPY {link}/HOSTSECRET /got\nCMD cat /got\n".encode()
    ctx = _context(
        {"Dockerfile": dockerfile},
        {"abs": canary, "rel": "../" * 10 + canary.lstrip("/")},
    )
    tag = f"secbuild-{secrets.token_hex(3)}"
    result = freightd.cli("build", "-t", tag, "-", input=ctx, timeout=60)
    out = output(result)
    assert result.returncode != 0, out
    assert "HOSTSECRET" in out, out
    assert freightd.cli("image", "inspect", tag).returncode != 0


def test_build_context_symlink_inside_is_followed(freightd):
    """Control for the test above: a link that stays inside the context is followed as
    docker does (`alias -> real`), so the refusal above is about leaving the context."""
    ctx = _context(
        {"Dockerfile": b"FROM busybox\nCOPY alias/f /got\n", "real/f": b"inside\n"},
        {"alias": "real"},
    )
    tag = f"secbuild-{secrets.token_hex(3)}"
    result = freightd.cli("build", "-q", "-t", tag, "-", input=ctx, timeout=60)
    assert result.returncode == 0, output(result)
    try:
        code, out = _run(freightd, tag, "cat", "/got")
        assert out == "inside\n", out
    finally:
        freightd.cli("rmi", "-f", tag)


@pytest.mark.parametrize(
    "flags",
    [
        ["-v", "VOL:/proc"],
        ["--tmpfs", "/proc/sys"],
        ["-v", "VOL:/proc/sys/kernel"],
        ["--mount", "type=tmpfs,destination=/proc/1"],
    ],
)
def test_mounts_over_proc_are_refused(freightd, cleanup, flags):
    """Attack: a volume, bind or tmpfs on /proc or inside it, hiding the masked and
    read-only paths (or replacing them with files the container controls). Safe outcome:
    the start is refused with an error naming the destination."""
    vol = f"secvol-{secrets.token_hex(3)}"
    cleanup["volumes"].append(vol)
    flags = [f.replace("VOL", vol) for f in flags]
    code, out = _run(freightd, *flags, "busybox", "cat", "/proc/self/status")
    dest = flags[1].split(":")[-1].split("destination=")[-1]
    assert code != 0 and dest in out and "refused" in out, out


def test_volume_at_proc_in_the_image_is_refused(freightd, cleanup):
    """Attack: an image declaring `VOLUME /proc` (or a volume path that is a symlink into
    /proc), so every container of it gets a writable volume over proc. Safe outcome: the
    container does not start; the error names the path."""
    name, out = import_image(freightd, [Entry("data", "symlink", target="/proc/sys")])
    assert name, out
    vol = f"secvol-{secrets.token_hex(3)}"
    cleanup["volumes"].append(vol)
    code, out = _run(freightd, "-v", f"{vol}:/data", name, "/bin/busybox", "true")
    assert code != 0 and "/data" in out and "/proc/sys" in out and "refused" in out, out
    tag = f"secproc-{secrets.token_hex(3)}"
    ctx = _context({"Dockerfile": b"FROM busybox\nVOLUME /proc\n"}, {})
    result = freightd.cli("build", "-q", "-t", tag, "-", input=ctx, timeout=60)
    assert result.returncode == 0, output(result)
    try:
        code, out = _run(freightd, tag, "true")
        assert code != 0 and "/proc" in out and "refused" in out, out
    finally:
        freightd.cli("rmi", "-f", tag)


def test_etc_files_through_symlinks(freightd, canary):
    """Attack: the image's /etc/hosts, /etc/resolv.conf and /etc/hostname are symlinks to a
    host file (absolute, and climbing with ..), so the daemon's binds of its generated
    files land on the host file (or copy it in). Safe outcome: the links resolve in the
    container's root; the container reads the generated files, the host file is unchanged."""
    secret = f"{canary}/HOSTSECRET"
    entries = [
        Entry("etc/hosts", "symlink", target=secret),
        Entry("etc/resolv.conf", "symlink", target="../" * 10 + secret.lstrip("/")),
        Entry("etc/hostname", "symlink", target=secret + "2"),
    ]
    name, out = import_image(freightd, entries)
    assert name, out
    code, out = _run(
        freightd, "--hostname", "inbox", name, "/bin/busybox", "cat", "/etc/hosts",
        "/etc/resolv.conf", "/etc/hostname",
    )  # fmt: skip
    assert code == 0, out
    assert "host-secret" not in out and "localhost" in out and "inbox" in out, out
    with open(secret) as f:
        assert f.read() == "host-secret\n"
    assert listing(canary) == ["HOSTSECRET"]


def test_image_proc_sys_dev_symlinks(freightd, canary):
    """Attack: the image's /proc, /sys and /dev are symlinks (to a host path, climbing, and
    to "/"), so the runtime's proc, sysfs and /dev mounts follow them onto the host.
    Safe outcome: the container either runs with those mounts inside its own root or is
    refused with an error naming the path; the host path is untouched either way."""
    entries = [
        Entry("proc", "symlink", target=canary),
        Entry("sys", "symlink", target="../../../.."),
        Entry("dev", "symlink", target="/"),
    ]
    name, out = import_image(freightd, entries)
    assert name, out
    code, out = _run(freightd, name, "/bin/busybox", "head", "-1", "/proc/self/status")
    assert code != 0 and "'/dev' is refused" in out and "root directory" in out, out
    assert listing(canary) == ["HOSTSECRET"]
    # Without the /dev link, proc -> <host path> and sys -> ../.. are followed inside.
    name, out = import_image(freightd, entries[:2])
    assert name, out
    code, out = _run(freightd, name, "/bin/busybox", "head", "-1", "/proc/self/status")
    assert code != 0 and "'/sys' is refused" in out, out
    name, out = import_image(freightd, entries[:1])
    assert name, out
    code, out = _run(freightd, name, "/bin/busybox", "head", "-1", "/proc/self/status")
    assert code == 0 and out.startswith("Name:"), out
    assert listing(canary) == ["HOSTSECRET"]


def test_fifo_at_etc_passwd_does_not_hang_the_daemon(freightd):
    """Attack: the image's /etc/passwd is a FIFO, so the daemon's user lookup (run -u name)
    blocks forever on open. Safe outcome: the run fails promptly, naming the user."""
    name, out = import_image(freightd, [Entry("etc/passwd", "fifo")])
    assert name, out
    result = freightd.cli("run", "--rm", "-u", "alice", name, "/bin/busybox", "true", timeout=15)
    assert result.returncode != 0 and "alice" in output(result), output(result)


@pytest.mark.parametrize("link", ["abs", "rel"])
def test_local_folder_context_symlink_out(freightd, canary, tmp_path, link):
    """Attack: the same links in a local folder given to `freight build DIR` (which the
    daemon reads in place, not as an uploaded tar). Safe outcome: the same refusal; the
    host's secret is in no image."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nCOPY {link}/HOSTSECRET /got\n")
    os.symlink(canary, ctx / "abs")
    os.symlink("../" * 10 + canary.lstrip("/"), ctx / "rel")
    tag = f"secbuild-{secrets.token_hex(3)}"
    result = freightd.cli("build", "-t", tag, str(ctx), timeout=60)
    out = output(result)
    if result.returncode == 0:
        code, got = _run(freightd, tag, "cat", "/got")
        freightd.cli("rmi", "-f", tag)
        raise AssertionError(f"built, /got holds {got!r}")
    assert "HOSTSECRET" in out, out
