"""End to end: images through the freight CLI and the real docker CLI.

busybox is bootstrapped by the session fixture; the other images here are
imported from a small root filesystem tarball (a static busybox and a few
applet links), each under a unique name, and removed at teardown.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CLIS = ("freight", "docker")
Cli = Callable[..., subprocess.CompletedProcess]
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "pwd", "cat", "true", "ls")


@pytest.fixture(params=CLIS)
def cli(request: pytest.FixtureRequest, freightd) -> Cli:
    return freightd.cli if request.param == "freight" else freightd.docker


@pytest.fixture
def repos(freightd) -> Iterator[Callable[[], str]]:
    """Unique repository names; their images (and containers) are removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"fx-img-{secrets.token_hex(4)}")
        return made[-1]

    yield new
    for repo in made:
        ids = freightd.docker("ps", "-aq", "-f", f"ancestor={repo}:1").stdout.decode().split()
        if ids:
            freightd.docker("rm", "-f", *ids)
        # By tag, never by id: a tag of busybox must not take busybox with it.
        listed = freightd.docker("images", "--format", "{{.Repository}}:{{.Tag}}", repo)
        tags = listed.stdout.decode().split()
        if tags:
            freightd.docker("rmi", *tags)


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root filesystem tarball: /bin/busybox, applet links, an empty /srv."""
    if not BUSYBOX.exists():
        pytest.skip("needs a static busybox at /bin/busybox")
    path = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(BUSYBOX, "bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        srv = tarfile.TarInfo("srv")
        srv.type, srv.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(srv)
    return path


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


def blobs(d) -> set[str]:
    return {p.name for p in (d.data_root / "content" / "blobs" / "sha256").iterdir()}


def image_ids(d) -> set[str]:
    return set(out(d.docker("images", "-aq", "--no-trunc")).split())


# bootstrap, images, history, inspect --------------------------------------------


def test_images_lists_bootstrapped_busybox(cli: Cli) -> None:
    lines = out(cli("images")).splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == [
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE",
    ]  # fmt: skip
    row = next(line.split() for line in lines[1:] if line.startswith("busybox "))
    assert row[1] == "latest" and re.fullmatch(r"[0-9a-f]{12}", row[2])
    assert row[-1].endswith("MB")
    assert out(cli("images", "--format", "{{.Repository}}:{{.Tag}}", "busybox")) == (
        "busybox:latest\n"
    )


def test_history_of_busybox(cli: Cli, freightd) -> None:
    image_id = out(freightd.docker("inspect", "-f", "{{.Id}}", "busybox")).strip()
    lines = out(cli("history", "busybox")).splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(lines) == 3
    assert lines[1].startswith(image_id.removeprefix("sha256:")[:12])
    assert 'CMD ["sh"]' in lines[1] and "0B" in lines[1]
    assert lines[2].startswith("<missing>") and "ADD file:" in lines[2]
    created_by = out(cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "busybox"))
    assert created_by.splitlines()[0] == '/bin/sh -c #(nop)  CMD ["sh"]'


def test_image_inspect_of_busybox(cli: Cli) -> None:
    [doc] = json.loads(out(cli("image", "inspect", "busybox")))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc["Id"])
    assert doc["RepoTags"] == ["busybox:latest"]
    assert doc["Config"]["Cmd"] == ["sh"]
    assert doc["Os"] == "linux"
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    assert doc["Size"] > 1_000_000


def test_inspect_unknown_image(cli: Cli) -> None:
    r = cli("image", "inspect", "nosuch-image-x")
    assert r.returncode != 0
    assert "No such image: nosuch-image-x" in r.stderr.decode()


# tag and rmi -----------------------------------------------------------------------


def test_tag_then_rmi_untags_only(cli: Cli, repos, freightd) -> None:
    repo = repos()
    busybox_id = out(freightd.docker("inspect", "-f", "{{.Id}}", "busybox")).strip()
    out(cli("tag", "busybox", f"{repo}:1"))
    out(cli("tag", "busybox", f"{repo}:2"))
    tags = out(freightd.docker("images", "--format", "{{.Tag}} {{.ID}}", repo)).split("\n")
    assert sorted(t for t in tags if t) == [f"1 {busybox_id[7:19]}", f"2 {busybox_id[7:19]}"]
    assert out(cli("rmi", f"{repo}:1")) == f"Untagged: {repo}:1\n"
    assert out(cli("rmi", f"{repo}:2")) == f"Untagged: {repo}:2\n"
    assert out(freightd.docker("inspect", "-f", "{{.Id}}", "busybox")).strip() == busybox_id


def test_rmi_deletes_last_tag(cli: Cli, repos, freightd, rootfs_tar: Path) -> None:
    repo = repos()
    image_id = out(freightd.docker("import", str(rootfs_tar), f"{repo}:1")).strip()
    assert out(cli("rmi", f"{repo}:1")).splitlines() == [
        f"Untagged: {repo}:1",
        f"Deleted: {image_id}",
    ]
    assert image_id not in image_ids(freightd)


def test_rmi_of_image_used_by_container(cli: Cli, repos, freightd, rootfs_tar: Path) -> None:
    repo = repos()
    image_id = out(freightd.docker("import", str(rootfs_tar), f"{repo}:1")).strip()
    cid = out(freightd.docker("create", f"{repo}:1", "echo", "still-works")).strip()
    r = cli("rmi", f"{repo}:1")
    assert r.returncode != 0
    assert (
        f'conflict: unable to remove repository reference "{repo}:1" (must force) - container '
        f"{cid[:12]} is using its referenced image {image_id[7:19]}" in r.stderr.decode()
    )
    assert out(cli("rmi", "-f", f"{repo}:1")) == f"Untagged: {repo}:1\n"
    assert out(freightd.docker("start", "-a", cid)) == "still-works\n"
    freightd.docker("rm", "-f", cid)
    out(freightd.docker("rmi", image_id))


def test_rmi_unknown_image(cli: Cli) -> None:
    r = cli("rmi", "nosuch-image-y:3")
    assert r.returncode != 0
    assert "No such image: nosuch-image-y:3" in r.stderr.decode()


# import ------------------------------------------------------------------------------


def test_import_file_with_changes_runs(cli: Cli, repos, rootfs_tar: Path) -> None:
    repo = repos()
    image_id = out(
        cli(
            "import",
            "--change", 'CMD ["sh", "-c", "echo $GREETING from $(pwd)"]',
            "--change", "ENV GREETING=hello",
            "--change", "WORKDIR /srv",
            "--message", "imported for a test",
            str(rootfs_tar), f"{repo}:1",
        )
    ).strip()  # fmt: skip
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    assert out(cli("run", "--rm", f"{repo}:1")) == "hello from /srv\n"
    comment = out(cli("history", "--format", "{{.Comment}}", f"{repo}:1"))
    assert comment == "imported for a test\n"


def test_import_from_stdin(cli: Cli, repos, rootfs_tar: Path) -> None:
    repo = repos()
    out(cli("import", "-", f"{repo}:1", input=rootfs_tar.read_bytes()))
    assert out(cli("run", "--rm", f"{repo}:1", "echo", "from-stdin")) == "from-stdin\n"
    [doc] = json.loads(out(cli("image", "inspect", f"{repo}:1")))
    assert doc["Config"]["Cmd"] is None  # an import has no command unless --change says so


def test_import_gzip_tarball(freightd, repos, rootfs_tar: Path, tmp_path: Path) -> None:
    repo = repos()
    gz = tmp_path / "rootfs.tar.gz"
    gz.write_bytes(gzip.compress(rootfs_tar.read_bytes(), compresslevel=1))
    out(freightd.cli("import", str(gz), f"{repo}:1"))
    assert out(freightd.docker("run", "--rm", f"{repo}:1", "echo", "gz")) == "gz\n"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_bad_tarball_leaves_nothing(
    cli: Cli, freightd, repos, rootfs_tar: Path, tmp_path: Path, damage: str
) -> None:
    repo = repos()
    bad = tmp_path / "bad.tar"
    data = rootfs_tar.read_bytes()
    bad.write_bytes(data[:100_000] if damage == "truncated" else os.urandom(5000))
    before_blobs, before_images = blobs(freightd), image_ids(freightd)
    r = cli("import", str(bad), f"{repo}:1")
    assert r.returncode != 0
    message = r.stderr.decode()
    assert "layer archive is truncated or corrupt" in message, message
    assert len(message.strip().splitlines()) <= 2
    assert out(freightd.docker("images", "-q", repo)) == ""
    assert image_ids(freightd) == before_images
    assert blobs(freightd) == before_blobs
    assert not any((freightd.data_root / "content" / "ingest").iterdir())


def test_import_missing_file(cli: Cli, tmp_path: Path) -> None:
    r = cli("import", str(tmp_path / "nope.tar"), "whatever:1")
    assert r.returncode != 0
    assert "no such file or directory" in r.stderr.decode()


# a daemon killed in the middle of an import -----------------------------------------------


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _ingest_bytes(d) -> int:
    return sum(p.stat().st_size for p in (d.data_root / "content" / "ingest").iterdir())


def test_daemon_killed_during_import_leaves_a_clean_store(
    run_id: str, daemon_tools, rootfs_tar: Path
) -> None:
    root = Path(f"/tmp/freight-test-{run_id}-import")
    root.mkdir()
    cgroup_parent = f"freight-test-{run_id}-import"
    d = daemon_tools.start(root, cgroup_parent)
    importer = None
    try:
        out(d.cli("import", str(rootfs_tar), "base:1"))
        before = blobs(d)
        importer = subprocess.Popen(
            [sys.executable, "-m", "freight.cli.main", "import", "-", "big:1"],
            env=d.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert importer.stdin is not None
        importer.stdin.write(_tar_header("big.bin", 1 << 30))
        chunk = bytes(1 << 20)
        deadline = time.monotonic() + 20
        while _ingest_bytes(d) < (8 << 20):  # well inside the 1 GiB entry
            assert time.monotonic() < deadline, "import never reached the content store"
            importer.stdin.write(chunk)
            importer.stdin.flush()
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait(10)
        importer.kill()
        importer.wait(10)
        d = daemon_tools.start(root, cgroup_parent)
        listing = out(d.cli("images", "--format", "{{.Repository}}:{{.Tag}}"))
        assert listing.split() == ["base:1"]
        assert blobs(d) == before
        assert not any((d.data_root / "content" / "ingest").iterdir())
        assert out(d.docker("run", "--rm", "base:1", "echo", "ok")) == "ok\n"
    finally:
        if importer is not None and importer.poll() is None:
            importer.kill()
            importer.wait()
        daemon_tools.stop(d)
        daemon_tools.cleanup(root, cgroup_parent)
