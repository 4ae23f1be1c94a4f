"""End to end: the image as version control through the freight CLI.

diff (A/C/D with whiteouts and opaque dirs), commit (run the new image,
history shows the step), export | import, save | load (freight's own
archives, what skopeo makes of them, the legacy `docker save` layout),
refused archives storing nothing, pruning and `system df`, and a freightd
killed in the middle of a load.

Prunes that are not narrowed by a label, and the kill, run on a daemon of
their own: on the session daemon they would take other tests' images.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

needs_skopeo = pytest.mark.skipif(
    shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)"
)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


def fails(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout.decode()
    return result.stderr.decode()


@pytest.fixture
def names(freightd) -> Iterator[Callable[[], str]]:
    """Unique names for containers and image repositories, all removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"fx-vcs-{secrets.token_hex(4)}")
        return made[-1]

    yield new
    for name in made:
        freightd.cli("rm", "-f", name)
    for name in made:
        tags = freightd.docker("images", "--format", "{{.Repository}}:{{.Tag}}", name)
        for tag in tags.stdout.decode().split():
            freightd.cli("rmi", "-f", tag)


def history_comments(freightd, image: str) -> list[str]:
    raw = ok(freightd.cli("history", "--no-trunc", "--format", "{{json .}}", image))
    return [json.loads(line)["Comment"] for line in raw.splitlines()]


# diff -----------------------------------------------------------------------------


def test_diff_reports_added_changed_deleted_and_opaque(freightd, names) -> None:
    name = names()
    script = (
        "echo hi > /hello; rm /etc/group; mkdir -p /var/x; echo a > /var/x/f; "
        "rm -rf /home; echo changed >> /etc/passwd; rm -rf /root; mkdir /root; touch /root/new"
    )
    ok(freightd.cli("run", "--name", name, "busybox", "sh", "-c", script))
    lines = ok(freightd.cli("diff", name)).splitlines()
    for expected in ("A /hello", "D /etc/group", "C /etc/passwd", "C /etc", "A /var/x",
                     "A /var/x/f", "C /var", "D /home", "A /root/new"):  # fmt: skip
        assert expected in lines, lines
    # /root was removed and made again: an opaque directory, so a change, not an add
    assert "C /root" in lines, lines
    assert not any(line.endswith(("/etc/hosts", "/etc/resolv.conf")) for line in lines), lines
    assert lines == sorted(lines, key=lambda line: line[2:])


def test_diff_of_unchanged_container_is_empty(freightd, names) -> None:
    name = names()
    ok(freightd.cli("create", "--name", name, "busybox", "true"))
    assert ok(freightd.cli("diff", name)) == ""
    assert "No such container" in fails(freightd.cli("diff", "fx-no-such-container"))


# commit ---------------------------------------------------------------------------


def test_commit_then_run_and_history(freightd, names) -> None:
    name, repo = names(), names()
    ok(freightd.cli("run", "--name", name, "-e", "FROM_RUN=1", "busybox", "sh", "-c",
                    "echo committed > /data; rm /etc/shadow"))  # fmt: skip
    image_id = ok(
        freightd.cli(
            "commit",
            "-m",
            "my step",
            "-a",
            "Tester <t@example.com>",
            "-c",
            "CMD cat /data",
            "-c",
            "ENV STEP=2",
            "-c",
            "LABEL fx.vcs=1",
            name,
            f"{repo}:v1",
        )  # fmt: skip
    ).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert ok(freightd.cli("run", "--rm", f"{repo}:v1")) == "committed\n"
    assert "No such file" in fails(freightd.cli("run", "--rm", f"{repo}:v1", "cat", "/etc/shadow"))
    assert history_comments(freightd, f"{repo}:v1")[0] == "my step"
    created_by = ok(
        freightd.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", repo + ":v1")
    )
    assert "echo committed > /data" in created_by.splitlines()[0]
    [doc] = json.loads(ok(freightd.cli("image", "inspect", f"{repo}:v1")))
    [base] = json.loads(ok(freightd.cli("image", "inspect", "busybox")))
    assert doc["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(doc["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    assert doc["Comment"] == "my step" and doc["Author"] == "Tester <t@example.com>"
    assert doc["Parent"] == base["Id"]
    assert doc["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /data"]
    assert "STEP=2" in doc["Config"]["Env"] and "FROM_RUN=1" in doc["Config"]["Env"]
    assert doc["Config"]["Labels"] == {"fx.vcs": "1"}
    graph = doc["GraphDriver"]["Data"]
    assert Path(graph["UpperDir"], "data").read_text() == "committed\n"
    assert Path(graph["LowerDir"], "bin/busybox").exists()


def test_commit_of_commit_stacks_layers(freightd, names) -> None:
    first, second, repo = names(), names(), names()
    ok(freightd.cli("run", "--name", first, "busybox", "sh", "-c", "echo 1 > /one"))
    ok(freightd.cli("commit", first, f"{repo}:1"))
    ok(freightd.cli("run", "--name", second, f"{repo}:1", "sh", "-c", "rm /one; echo 2 > /two"))
    ok(freightd.cli("commit", "-m", "second", second, f"{repo}:2"))
    assert "No such file" in fails(freightd.cli("run", "--rm", f"{repo}:2", "cat", "/one"))
    assert ok(freightd.cli("run", "--rm", f"{repo}:2", "cat", "/two")) == "2\n"
    assert history_comments(freightd, f"{repo}:2")[:2] == ["second", ""]


def test_commit_bad_change_and_unknown_container(freightd, names) -> None:
    name = names()
    ok(freightd.cli("create", "--name", name, "busybox", "true"))
    assert "FROM is not a valid change command" in fails(
        freightd.cli("commit", "-c", "FROM busybox", name, names())
    )
    assert "No such container" in fails(freightd.cli("commit", "fx-no-such-container"))


def test_commit_running_container_paused_and_unpaused(freightd, names) -> None:
    name, repo = names(), names()
    script = (
        # /counter is replaced by a rename, so any one instant has a number in it
        "i=0; while true; do i=$((i+1)); echo $i > /c.new; mv /c.new /counter; "
        "dd if=/dev/zero of=/blob bs=1k count=$((i % 200)) 2>/dev/null; done"
    )
    ok(freightd.cli("run", "-d", "--name", name, "busybox", "sh", "-c", script))
    time.sleep(0.5)
    ok(freightd.cli("commit", name, f"{repo}:paused"))
    assert ok(freightd.cli("run", "--rm", f"{repo}:paused", "cat", "/counter")).strip().isdigit()
    assert ok(freightd.cli("inspect", "-f", "{{.State.Status}}", name)).strip() == "running"
    for i in range(4):
        result = freightd.cli("commit", "--pause=false", name, f"{repo}:u{i}")
        if result.returncode == 0:  # a consistent layer: it unpacked and runs
            ok(freightd.cli("run", "--rm", f"{repo}:u{i}", "cat", "/counter"))
        else:
            assert "changed while its layer was written" in result.stderr.decode()


# export / import --------------------------------------------------------------------


def test_export_import_round_trip(freightd, names, tmp_path: Path) -> None:
    name, repo = names(), names()
    ok(
        freightd.cli(
            "run", "--name", name, "busybox", "sh", "-c", "echo exported > /x; rm /etc/group"
        )
    )
    out = tmp_path / "fs.tar"
    ok(freightd.cli("export", "-o", str(out), name))
    with tarfile.open(out) as tar:
        listed = set(tar.getnames())
    assert {"x", "bin/busybox", "etc/passwd"} <= listed
    assert "etc/group" not in listed and not any(".wh." in n for n in listed)
    piped = freightd.cli("export", name).stdout
    assert piped[:512] == out.read_bytes()[:512]
    ok(freightd.cli("import", "-m", "flat", str(out), f"{repo}:flat"))
    assert ok(freightd.cli("run", "--rm", f"{repo}:flat", "cat", "/x")) == "exported\n"
    [doc] = json.loads(ok(freightd.cli("image", "inspect", f"{repo}:flat")))
    assert len(doc["RootFS"]["Layers"]) == 1


def test_export_of_running_container(freightd, names) -> None:
    name = names()
    ok(freightd.cli("run", "-d", "--name", name, "busybox", "sh", "-c",
                    "echo live > /live; exec sleep 600"))  # fmt: skip
    deadline = time.monotonic() + 10
    listed: list[str] = []
    while "live" not in listed and time.monotonic() < deadline:
        exported = freightd.cli("export", name)
        assert exported.returncode == 0, exported.stderr.decode()
        with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
            listed = tar.getnames()
        time.sleep(0.05)
    assert "live" in listed and "bin/busybox" in listed
    assert not any(n.startswith("proc/") for n in listed)  # the container's mounts stay out


# save / load ------------------------------------------------------------------------


@pytest.fixture
def committed(freightd, names) -> str:
    """An image of two layers, tagged repo:1."""
    name, repo = names(), names()
    ok(freightd.cli("run", "--name", name, "busybox", "sh", "-c", "echo saved > /saved"))
    ok(freightd.cli("commit", "-m", "for save", name, f"{repo}:1"))
    return f"{repo}:1"


def image_id(freightd, ref: str) -> str:
    return ok(freightd.cli("image", "inspect", "-f", "{{.Id}}", ref)).strip()


def test_save_load_round_trip(freightd, committed: str, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    before = image_id(freightd, committed)
    ok(freightd.cli("save", "-o", str(archive), committed))
    with tarfile.open(archive) as tar:
        listed = set(tar.getnames())
    assert {"manifest.json", "index.json", "oci-layout"} <= listed
    ok(freightd.cli("rmi", committed))
    assert f"Loaded image: {committed}" in ok(freightd.cli("load", "-i", str(archive)))
    assert image_id(freightd, committed) == before
    assert ok(freightd.cli("run", "--rm", committed, "cat", "/saved")) == "saved\n"
    assert history_comments(freightd, committed)[0] == "for save"
    # stdin, gzip-compressed
    import gzip

    data = gzip.compress(archive.read_bytes(), compresslevel=1)
    ok(freightd.cli("rmi", committed))
    assert f"Loaded image: {committed}" in ok(freightd.cli("load", input=data))


def test_save_unknown_image_fails_and_writes_nothing(freightd, tmp_path: Path) -> None:
    target = tmp_path / "x.tar"
    assert "No such image" in fails(freightd.cli("save", "-o", str(target), "fx-no-such:1"))
    assert not target.exists()


@needs_skopeo
def test_skopeo_reads_what_save_wrote(freightd, committed: str, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    ok(freightd.cli("save", "-o", str(archive), committed))
    [doc] = json.loads(ok(freightd.cli("image", "inspect", committed)))
    for transport in ("oci-archive", "docker-archive"):
        raw = subprocess.run(["skopeo", "inspect", "--config", f"{transport}:{archive}"],
                             capture_output=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
        config = json.loads(ok(raw))
        assert config["rootfs"]["diff_ids"] == doc["RootFS"]["Layers"], transport
    raw = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"],
                         capture_output=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert json.loads(ok(raw))["Layers"] == doc["RootFS"]["Layers"]


@pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")
def test_umoci_unpacks_what_save_wrote(freightd, committed: str, tmp_path: Path) -> None:
    archive, layout, bundle = tmp_path / "img.tar", tmp_path / "layout", tmp_path / "bundle"
    ok(freightd.cli("save", "-o", str(archive), committed))
    layout.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    tag = committed.rsplit(":", 1)[1]
    listed = subprocess.run(["umoci", "ls", "--layout", str(layout)],
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert ok(listed).split() == [tag]
    unpacked = subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(bundle)],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    ok(unpacked)
    assert (bundle / "rootfs/saved").read_text() == "saved\n"
    assert (bundle / "rootfs/bin/busybox").exists()


@needs_skopeo
def test_load_archives_skopeo_wrote(freightd, committed: str, tmp_path: Path, names) -> None:
    """The legacy layout `docker save` wrote before Docker 25 (skopeo's docker-archive:),
    and a plain OCI image layout, tarred."""
    archive = tmp_path / "img.tar"
    ok(freightd.cli("save", "-o", str(archive), committed))
    legacy, layout = tmp_path / "legacy.tar", tmp_path / "layout"
    repo = names()
    for dest in (f"docker-archive:{legacy}:{repo}:legacy", f"oci:{layout}:{repo}:oci"):
        ok(subprocess.run(["skopeo", "copy", f"oci-archive:{archive}", dest],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120))  # fmt: skip
    with tarfile.open(legacy) as tar:
        assert any(n.endswith("/layer.tar") for n in tar.getnames())  # the legacy layout
    assert f"Loaded image: {repo}:legacy" in ok(freightd.cli("load", "-i", str(legacy)))
    assert ok(freightd.cli("run", "--rm", f"{repo}:legacy", "cat", "/saved")) == "saved\n"
    layout_tar = tmp_path / "layout.tar"
    with tarfile.open(layout_tar, "w") as tar:
        for entry in sorted(layout.rglob("*")):
            tar.add(entry, str(entry.relative_to(layout)), recursive=False)
    loaded = ok(freightd.cli("load", "-i", str(layout_tar)))
    assert "Loaded image" in loaded  # ref name "repo:oci" names it
    assert ok(freightd.cli("run", "--rm", f"{repo}:oci", "cat", "/saved")) == "saved\n"


def _blobs(d) -> set[str]:
    return {p.name for p in (d.data_root / "content" / "blobs" / "sha256").iterdir()}


def _corrupt_archives(archive: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}
    layer = max((n for n in files if n.startswith("blobs/")), key=lambda n: len(files[n]))

    def write(name: str, entries: dict[str, bytes], extra: tarfile.TarInfo | None = None) -> Path:
        path = tmp / f"{name}.tar"
        with tarfile.open(path, "w") as tar:
            for entry_name, data in entries.items():
                info = tarfile.TarInfo(entry_name)
                info.size = len(data)
                tar.addfile(info, __import__("io").BytesIO(data))
            if extra is not None:
                tar.addfile(extra)
        return path

    wrong = dict(files)
    middle = len(files[layer]) // 2
    wrong[layer] = (
        files[layer][:middle] + bytes([files[layer][middle] ^ 1]) + files[layer][middle + 1 :]
    )
    missing = {k: v for k, v in files.items() if k != layer}
    evil = tarfile.TarInfo("blobs/sha256/evil")
    evil.type, evil.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
    escaping = dict(files)
    escaping["../../outside"] = b"x"
    return {
        "wrong digest": (write("wrong", wrong), "has digest"),
        "missing blob": (write("missing", missing), "missing"),
        "hostile link": (write("link", files, evil), "outside the archive"),
        "hostile path": (write("path", escaping), "escapes the archive"),
        "truncated": (write("trunc", {"x": b""}), "no manifest.json or index.json"),
    }


def test_corrupt_and_hostile_archives_are_refused(freightd, committed: str, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    ok(freightd.cli("save", "-o", str(archive), committed))
    ok(freightd.cli("rmi", committed))
    images_before, blobs_before = ok(freightd.cli("images", "-aq", "--no-trunc")), _blobs(freightd)
    for what, (path, reason) in _corrupt_archives(archive, tmp_path).items():
        err = fails(freightd.cli("load", "-i", str(path)))
        assert reason in err, (what, err)
        assert ok(freightd.cli("images", "-aq", "--no-trunc")) == images_before, what
        assert _blobs(freightd) == blobs_before, what
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert "truncated or corrupt" in fails(freightd.cli("load", "-i", str(cut)))
    assert _blobs(freightd) == blobs_before


# prune and df (narrowed by label on the shared daemon) --------------------------------


def test_container_and_image_prune_by_label(freightd, names) -> None:
    label = f"fx.prune={secrets.token_hex(4)}"
    name, repo = names(), names()
    ok(freightd.cli("run", "--name", name, "--label", label, "busybox", "sh", "-c",
                    "head -c 100000 /dev/zero > /big"))  # fmt: skip
    ok(freightd.cli("commit", name, f"{repo}:1"))
    out = ok(freightd.cli("container", "prune", "-f", "--filter", f"label={label}"))
    assert out.startswith("Deleted Containers:\n") and "Total reclaimed space: 100kB" in out
    assert fails(freightd.cli("inspect", name))
    ok(freightd.cli("rmi", f"{repo}:1"))  # untagged but kept? no: nothing uses it, it is gone
    out = ok(freightd.cli("image", "prune", "-f", "--filter", f"label={label}"))
    assert "Total reclaimed space:" in out


def test_system_df(freightd) -> None:
    lines = ok(freightd.cli("system", "df")).splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in lines[1:]] == ["Images", "Containers", "Local", "Build"]
    assert "Images space usage:" in ok(freightd.cli("system", "df", "-v"))


# a daemon of our own: prune everything, kill during load --------------------------------


@pytest.fixture(scope="module")
def own_daemon(daemon_tools, run_id: str) -> Iterator:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = Path(f"/tmp/freight-vcs-{run_id}")
    root.mkdir(parents=True)
    cgroup = f"freight-vcs-{run_id}"
    d = daemon_tools.start(root, cgroup)
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        yield d
    finally:
        daemon_tools.stop(d)
        # A frozen process cannot die: thaw whatever a failed test left frozen.
        for state in Path("/sys/fs/cgroup/freezer", cgroup).glob("**/freezer.state"):
            state.write_text("THAWED")
        daemon_tools.cleanup(root, cgroup)


def test_prune_everything(own_daemon) -> None:
    d = own_daemon
    ok(d.cli("run", "--name", "p1", "busybox", "sh", "-c", "echo x > /x"))
    ok(d.cli("commit", "p1"))  # dangling
    ok(d.cli("commit", "p1", "keep:1"))
    out = ok(d.cli("image", "prune", "-f"))
    assert out.startswith("Deleted Images:\ndeleted: sha256:"), out
    assert "keep:1" in ok(d.cli("images", "--format", "{{.Repository}}:{{.Tag}}"))
    out = ok(d.cli("system", "prune", "-af"))
    assert "Deleted Containers:" in out and "untagged: keep:1" in out
    assert "Total reclaimed space:" in out
    assert ok(d.cli("images", "-q")) == "" and ok(d.cli("ps", "-aq")) == ""
    assert _blobs(d) == set()
    ok(d.cli("image", "bootstrap", "busybox", timeout=120))


def test_sigkill_during_load_leaves_no_half_image(own_daemon, daemon_tools, tmp_path) -> None:
    d = own_daemon
    ok(d.cli("run", "--name", "big", "busybox", "sh", "-c", "head -c 30000000 /dev/urandom > /big"))
    ok(d.cli("commit", "big", "big:1"))
    archive = tmp_path / "big.tar"
    ok(d.cli("save", "-o", str(archive), "big:1"))
    ok(d.cli("rm", "big"))
    ok(d.cli("rmi", "big:1"))
    images_before, blobs_before = ok(d.cli("images", "-aq", "--no-trunc")), _blobs(d)
    data = archive.read_bytes()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(d.host.removeprefix("unix://"))
    sock.sendall(
        b"POST /v1.45/images/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n".encode()
    )
    sock.sendall(data[: len(data) * 3 // 4])  # most of it: blobs are being written
    ingest = d.data_root / "content" / "ingest"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (ingest.exists() and any(ingest.iterdir())):
        time.sleep(0.01)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    sock.close()
    restarted = daemon_tools.start(d.root, d.cgroup_parent)
    d.proc = restarted.proc
    assert ok(d.cli("images", "-aq", "--no-trunc")) == images_before
    assert _blobs(d) == blobs_before  # the partial load's blobs were collected
    assert not any((d.data_root / "content" / "ingest").iterdir())
    assert ok(d.cli("run", "--rm", "busybox", "echo", "alive")) == "alive\n"
    assert "Loaded image: big:1" in ok(d.cli("load", "-i", str(archive)))


def test_sigkill_during_commit_leaves_no_half_image(own_daemon, daemon_tools) -> None:
    d = own_daemon
    ok(d.cli("run", "--name", "bigc", "busybox", "sh", "-c",
             "head -c 200000000 /dev/urandom > /big"))  # fmt: skip
    images_before, blobs_before = ok(d.cli("images", "-aq", "--no-trunc")), _blobs(d)
    commit = subprocess.Popen(
        [sys.executable, "-m", "freight.cli.main", "commit", "bigc", "half:1"], env=d.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    ingest = d.data_root / "content" / "ingest"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(ingest.iterdir()):
        time.sleep(0.005)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    commit.communicate(timeout=30)
    assert commit.returncode != 0  # it was cut short
    d.proc = daemon_tools.start(d.root, d.cgroup_parent).proc
    assert ok(d.cli("images", "-aq", "--no-trunc")) == images_before
    assert _blobs(d) == blobs_before
    assert not any(ingest.iterdir())
    assert "half" not in ok(d.cli("images"))
    ok(d.cli("commit", "bigc", "whole:1"))  # the container is intact: commit again
    assert ok(d.cli("run", "--rm", "whole:1", "ls", "-l", "/big")).split()[4] == "200000000"
    ok(d.cli("rm", "bigc"))
    ok(d.cli("rmi", "whole:1"))


def test_sigkill_during_paused_commit_thaws_on_restart(own_daemon, daemon_tools) -> None:
    d = own_daemon
    ok(d.cli("run", "-d", "--name", "frozen", "busybox", "sh", "-c",
             "head -c 200000000 /dev/urandom > /big; echo ready; exec sleep 600"))  # fmt: skip
    deadline = time.monotonic() + 30
    while "ready" not in ok(d.cli("logs", "frozen")) and time.monotonic() < deadline:
        time.sleep(0.1)
    commit = subprocess.Popen(
        [sys.executable, "-m", "freight.cli.main", "commit", "frozen", "half:2"], env=d.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    ingest = d.data_root / "content" / "ingest"
    while time.monotonic() < deadline and not any(ingest.iterdir()):
        time.sleep(0.005)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    commit.communicate(timeout=30)
    d.proc = daemon_tools.start(d.root, d.cgroup_parent).proc
    assert "half" not in ok(d.cli("images"))
    assert ok(d.cli("inspect", "-f", "{{.State.Status}}", "frozen")).strip() == "running"
    # thawed: the container answers an exec (a frozen one would hang)
    assert ok(d.cli("exec", "frozen", "echo", "thawed", timeout=20)) == "thawed\n"
    ok(d.cli("rm", "-f", "frozen"))
