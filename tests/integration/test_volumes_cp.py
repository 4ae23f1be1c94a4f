"""Mounts, volumes and cp end to end with the freight CLI against a real freightd.

Containers run with `--network none`: these tests are about storage only.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import tarfile
from pathlib import Path

import pytest

RUN = ("run", "--network", "none")


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result.stdout.decode()


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def seeded_image(freightd, tmp_path_factory) -> str:
    """An image with `VOLUME /seed` and content at /seed (for copy-up)."""
    work = tmp_path_factory.mktemp("seedimg")
    tar_path = work / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", "bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
        for d in ("seed", "tmp", "etc"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = b"from the image\n"
        info = tarfile.TarInfo("seed/hello")
        info.size, info.mode, info.uid = len(data), 0o640, 1234
        tar.addfile(info, io.BytesIO(data))
    tag = f"seeded-{secrets.token_hex(3)}:latest"
    ok(freightd.cli("import", "--change", "VOLUME /seed", str(tar_path), tag))
    return tag


def test_bind_round_trip_and_read_only(freightd, tmp_path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "from-host").write_text("host says hi\n")
    out = ok(
        freightd.cli(
            *RUN, "--rm", "-v", f"{tmp_path}/in:/data", "busybox",
            "sh", "-c", "cat /data/from-host; echo ctr > /data/from-ctr",
        )
    )  # fmt: skip
    assert out == "host says hi\n"
    assert (tmp_path / "in" / "from-ctr").read_text() == "ctr\n"
    out = ok(
        freightd.cli(
            *RUN, "--rm", "-v", f"{tmp_path}/in:/data:ro",
            "--mount", f"type=bind,source={tmp_path}/in,target=/m,readonly",
            "busybox", "sh", "-c",
            "touch /data/x 2>/dev/null || echo ro1; touch /m/x 2>/dev/null || echo ro2",
        )
    )  # fmt: skip
    assert out.split() == ["ro1", "ro2"]
    assert not (tmp_path / "in" / "x").exists()


def test_mount_bind_missing_source_is_an_error_but_v_creates_it(freightd, tmp_path) -> None:
    missing = tmp_path / "nope"
    result = freightd.cli(
        *RUN, "--rm", "--mount", f"type=bind,source={missing},target=/x", "busybox", "true"
    )
    assert result.returncode == 125
    assert f"bind source path does not exist: {missing}" in result.stderr.decode()
    ok(freightd.cli(*RUN, "--rm", "-v", f"{missing}:/x", "busybox", "true"))
    assert missing.is_dir()


def test_named_volume_persists_and_is_protected(freightd) -> None:
    vol = name("data")
    ok(freightd.cli(*RUN, "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo 1 > /data/f"))
    assert (
        ok(freightd.cli(*RUN, "--rm", "-v", f"{vol}:/data", "busybox", "cat", "/data/f")) == "1\n"
    )
    inspect = json.loads(ok(freightd.cli("volume", "inspect", vol)))
    assert inspect[0]["Name"] == vol and inspect[0]["Driver"] == "local"
    cid = ok(freightd.cli("create", "--network", "none", "-v", f"{vol}:/data", "busybox")).strip()
    result = freightd.cli("volume", "rm", vol)
    assert result.returncode == 1
    assert f"remove {vol}: volume is in use - [{cid}]" in result.stderr.decode()
    ok(freightd.cli("rm", cid))
    assert ok(freightd.cli("volume", "rm", vol)) == f"{vol}\n"
    assert vol not in ok(freightd.cli("volume", "ls", "-q"))


def test_copy_up_from_the_image_and_nocopy(freightd, seeded_image) -> None:
    out = ok(freightd.cli(*RUN, "--rm", seeded_image, "sh", "-c", "cat /seed/hello"))
    assert out == "from the image\n"
    vol = name("seeded")
    out = ok(
        freightd.cli(
            *RUN, "--rm", "-v", f"{vol}:/seed", seeded_image,
            "sh", "-c", "cat /seed/hello; echo more >> /seed/hello",
        )
    )  # fmt: skip
    assert out == "from the image\n"
    path = Path(json.loads(ok(freightd.cli("volume", "inspect", vol)))[0]["Mountpoint"])
    assert (path / "hello").read_text() == "from the image\nmore\n"
    assert (path / "hello").stat().st_uid == 1234
    # An existing, non-empty volume is not copied over again.
    out = ok(
        freightd.cli(
            *RUN, "--rm", "-v", f"{vol}:/seed", seeded_image, "sh", "-c", "cat /seed/hello"
        )
    )
    assert out == "from the image\nmore\n"
    empty = name("nocopy")
    out = ok(
        freightd.cli(
            *RUN, "--rm", "-v", f"{empty}:/seed:nocopy", seeded_image, "sh", "-c", "ls /seed"
        )
    )
    assert out == ""
    ok(freightd.cli("volume", "rm", vol, empty))


def test_anonymous_volumes_go_with_rm_v(freightd, seeded_image) -> None:
    before = set(ok(freightd.cli("volume", "ls", "-q")).split())
    cid = ok(freightd.cli(*RUN, "-d", "-v", "/scratch", seeded_image, "sh", "-c", "true")).strip()
    ok(freightd.cli("wait", cid))
    mounts = json.loads(ok(freightd.cli("inspect", "-f", "{{json .Mounts}}", cid)))
    anonymous = {m["Name"] for m in mounts if m["Type"] == "volume"}
    assert {m["Destination"] for m in mounts} == {"/scratch", "/seed"}
    assert anonymous <= set(ok(freightd.cli("volume", "ls", "-q")).split()) - before
    ok(freightd.cli("rm", "-v", cid))
    assert not anonymous & set(ok(freightd.cli("volume", "ls", "-q")).split())


def test_tmpfs_size_limit_holds(freightd) -> None:
    result = freightd.cli(
        *RUN, "--rm", "--tmpfs", "/t:size=1m", "--read-only", "busybox", "sh", "-c",
        "dd if=/dev/zero of=/t/f bs=1k count=2048 2>/dev/null; echo $?; du -k /t/f; "
        "touch /root-ro 2>/dev/null || echo rootfs-ro",
    )  # fmt: skip
    lines = ok(result).split("\n")
    assert lines[0] != "0"  # dd failed: no space left
    assert int(lines[1].split()[0]) <= 1024
    assert lines[2] == "rootfs-ro"


def test_volume_opts_tmpfs_and_prune(freightd) -> None:
    vol = name("tmpv")
    label = f"test={secrets.token_hex(2)}"
    ok(
        freightd.cli(
            "volume", "create", "--label", label, "-o", "type=tmpfs",
            "-o", "device=tmpfs", "-o", "o=size=2m", vol,
        )
    )  # fmt: skip
    out = ok(
        freightd.cli(*RUN, "--rm", "-v", f"{vol}:/v", "busybox", "sh", "-c", "df -k /v | tail -1")
    )
    assert out.split()[1] == "2048"
    listed = ok(freightd.cli("volume", "ls", "-q", "--filter", f"label={label}"))
    assert listed.split() == [vol]
    out = ok(freightd.cli("volume", "prune", "-f", "-a", "--filter", f"label={label}"))
    assert vol in out and "Total reclaimed space" in out
    assert vol not in ok(freightd.cli("volume", "ls", "-q"))


def test_volumes_from(freightd) -> None:
    vol = name("shared")
    src = ok(
        freightd.cli(
            *RUN, "-d", "-v", f"{vol}:/shared", "busybox", "sh", "-c", "echo s > /shared/f"
        )
    ).strip()
    ok(freightd.cli("wait", src))
    out = ok(
        freightd.cli(
            *RUN, "--rm", "--volumes-from", f"{src}:ro", "busybox",
            "sh", "-c", "cat /shared/f; touch /shared/g 2>/dev/null || echo ro",
        )
    )  # fmt: skip
    assert out.split() == ["s", "ro"]
    ok(freightd.cli("rm", src))
    ok(freightd.cli("volume", "rm", vol))


# cp ----------------------------------------------------------------------------


@pytest.fixture
def running(freightd, tmp_path):
    vol = name("cpvol")
    cid = ok(
        freightd.cli(
            *RUN, "-d", "-v", f"{vol}:/vol", "-v", f"{tmp_path}:/ro:ro", "busybox", "sleep", "300"
        )
    ).strip()
    yield cid
    freightd.cli("rm", "-f", "-v", cid)
    freightd.cli("volume", "rm", vol)


def test_cp_both_ways_running_and_stopped(freightd, tmp_path, running) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    (src / "sub" / "b.txt").write_text("b\n")
    ok(freightd.cli("cp", str(src), f"{running}:/tmp/"))
    ok(freightd.cli("cp", str(src / "a.txt"), f"{running}:/vol/renamed.txt"))
    out = ok(freightd.cli("exec", running, "cat", "/tmp/tree/sub/b.txt", "/vol/renamed.txt"))
    assert out == "b\na\n"
    ok(freightd.cli("stop", "-t", "0", running))
    back = tmp_path / "back"
    ok(freightd.cli("cp", f"{running}:/tmp/tree", str(back)))
    assert (back / "sub" / "b.txt").read_text() == "b\n"
    ok(freightd.cli("cp", f"{running}:/vol/renamed.txt", str(tmp_path / "r.txt")))
    assert (tmp_path / "r.txt").read_text() == "a\n"
    ok(freightd.cli("cp", str(src / "a.txt"), f"{running}:/vol/while-stopped"))
    ok(freightd.cli("start", running))
    assert ok(freightd.cli("exec", running, "cat", "/vol/while-stopped")) == "a\n"


def test_cp_stdin_stdout_tar_and_globs(freightd, tmp_path, running) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for n in ("x.log", "y.log", "z.txt"):
            info = tarfile.TarInfo(n)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"l\n"))
    ok(freightd.cli("cp", "-", f"{running}:/tmp", input=buf.getvalue()))
    out = freightd.cli("cp", f"{running}:/tmp/x.log", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.getnames() == ["x.log"]
    logs = tmp_path / "logs"
    logs.mkdir()
    ok(freightd.cli("cp", f"{running}:/tmp/*.log", f"{running}:/etc/hostname", f"{logs}/"))
    assert sorted(p.name for p in logs.iterdir()) == ["hostname", "x.log", "y.log"]


def test_cp_symlinks_never_lead_out(freightd, tmp_path, running) -> None:
    outside = tmp_path / "host-only"
    outside.mkdir()
    ok(
        freightd.cli(
            "exec", running, "sh", "-c",
            f"mkdir -p /tmp/box && ln -s {outside} /tmp/abs && ln -s ../../../../.. /tmp/up",
        )
    )  # fmt: skip
    (tmp_path / "f").write_text("payload\n")
    # Through a link to a path that exists only on the host: not found inside.
    result = freightd.cli("cp", str(tmp_path / "f"), f"{running}:/tmp/abs/")
    assert result.returncode != 0
    ok(freightd.cli("cp", str(tmp_path / "f"), f"{running}:/tmp/up/"))
    assert list(outside.iterdir()) == []
    assert ok(freightd.cli("exec", running, "cat", "/f")) == "payload\n"
    # A tar whose symlink entry points out, then a file through it: lands inside.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("esc")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
        info = tarfile.TarInfo("esc/pwned")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"no\n"))
    ok(freightd.cli("cp", "-", f"{running}:/tmp/box", input=buf.getvalue()))
    assert list(outside.iterdir()) == []
    out = ok(freightd.cli("exec", running, "cat", f"{outside}/pwned"))
    assert out == "no\n"
    # Reading through a link that points at the host's /etc reads the container's.
    ok(freightd.cli("exec", running, "ln", "-s", "/etc", "/tmp/etc-link"))
    ok(freightd.cli("cp", f"{running}:/tmp/etc-link/hostname", str(tmp_path / "hn")))
    assert (tmp_path / "hn").read_text().strip() == running[:12]


def test_cp_errors(freightd, tmp_path, running) -> None:
    (tmp_path / "f").write_text("x\n")
    result = freightd.cli("cp", str(tmp_path / "f"), f"{running}:/no/such/dir/f")
    assert result.returncode == 1
    assert "Could not find the file /no/such/dir in container" in result.stderr.decode()
    result = freightd.cli("cp", str(tmp_path / "f"), f"{running}:/ro/")
    assert "mounted volume is marked read-only" in result.stderr.decode()
    result = freightd.cli("cp", "-", f"{running}:/tmp", input=b"this is not a tar file" * 40)
    assert result.returncode == 1
    assert "archive/tar: invalid tar header" in result.stderr.decode()
    result = freightd.cli("cp", f"{running}:/nonexistent", str(tmp_path))
    assert "Could not find the file /nonexistent in container" in result.stderr.decode()
