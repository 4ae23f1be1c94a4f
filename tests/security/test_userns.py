"""User namespaces: a container's root is an unprivileged uid on the host.

The runtime alone (a bundle with linux.uidMappings and an idmapped rootfs),
a daemon of its own with --userns-remap=default (which creates user
dockremap and its /etc/subuid, /etc/subgid ranges; the fixture undoes that),
and --userns=auto / --uidmap / --userns=host on the session daemon.
Each test states the attack and the safe outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.linux import idmap, syscalls, userns
from freight.runtime.native import FreightRuntime

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from runtime_fixtures import Harness, become_subreaper, make_bundle, skip_unless_root  # noqa: E402

SUBUID, SUBGID = Path("/etc/subuid"), Path("/etc/subgid")
MAP = userns.IdMap((userns.IdRange(0, 100000, 65536),), (userns.IdRange(0, 100000, 65536),))


def _host_ids(pid: int) -> tuple[int, int]:
    """The real uid and gid of `pid` as the host sees them."""
    uid = gid = -1
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
        elif line.startswith("Gid:"):
            gid = int(line.split()[1])
    return uid, gid


# the runtime on its own ---------------------------------------------------------------


@pytest.fixture
def harness() -> Iterator[Harness]:
    skip_unless_root()
    become_subreaper()
    # Not under pytest's 0700 tmp: the container's root (host uid 100000) must be
    # able to reach its rootfs, as with runc (dockerd makes its dirs 0711 for it).
    tmp = Path(tempfile.mkdtemp(prefix="freight-userns-", dir="/tmp"))
    os.chmod(tmp, 0o711)
    h = Harness(FreightRuntime(tmp / "state"), tmp)
    yield h
    h.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)


def _userns_bundle(tmp: Path, args: list[str]) -> tuple[Path, str]:
    """A bundle asking for a user namespace, its rootfs an idmapped view of rootfs-src."""
    bundle, cid = make_bundle(tmp, args)
    spec = json.loads((bundle / "config.json").read_text())
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    (bundle / "config.json").write_text(json.dumps(spec))
    (bundle / "rootfs").rename(bundle / "rootfs-src")
    (bundle / "rootfs").mkdir()
    fd = userns.namespace_fd(MAP)
    try:
        idmap.idmapped_bind(str(bundle / "rootfs-src"), str(bundle / "rootfs"), fd)
    finally:
        os.close(fd)
    return bundle, cid


def test_runtime_root_is_unprivileged_on_the_host(harness: Harness) -> None:
    """Attack: root in the container acts on the host as root (reads, kills, writes).
    Safe outcome: the init is uid/gid 100000 on the host while `id` says 0 inside;
    a file it creates lands unshifted on disk through the idmapped rootfs; an exec
    joins the same user namespace."""
    script = "id -u; id -g; cat /proc/self/uid_map; touch /made; sleep 5"
    bundle, cid = _userns_bundle(harness.tmp, ["sh", "-c", script])
    harness.ids.append(cid)
    r, w = os.pipe()
    try:
        pid, _ = harness.rt.create(cid, bundle, 0, w, w)
        os.close(w)
        assert _host_ids(pid) == (100000, 100000)
        harness.rt.start(cid)
        with os.fdopen(r, "rb") as out:
            first = b""
            while first.count(b"\n") < 3:
                first += out.read1(4096)
            assert first.decode().split()[:5] == ["0", "0", "0", "100000", "65536"]
            er, ew = os.pipe()
            from freight.oci.runtime_spec import Process, User

            proc = Process(args=["cat", "/proc/self/uid_map"], cwd="/", user=User(0, 0),
                           env=["PATH=/bin"])  # fmt: skip
            epid, _ = harness.rt.exec(cid, proc, 0, ew, ew)
            os.close(ew)
            with os.fdopen(er, "rb") as eout:
                assert eout.read().split() == [b"0", b"100000", b"65536"]
            os.waitpid(epid, 0)
            harness.rt.kill(cid, 9)
        os.waitpid(pid, 0)
        harness.rt.delete(cid)
        made = bundle / "rootfs-src" / "made"
        assert made.exists() and made.stat().st_uid == 0  # stored as the image's ids
    finally:
        syscalls.umount(str(bundle / "rootfs"), syscalls.MNT_DETACH)


def test_runtime_refuses_maps_without_a_namespace(harness: Harness) -> None:
    """Misuse: mappings in a spec with no user namespace. Safe outcome: create fails
    naming the problem instead of running the container as host root."""
    bundle, cid = make_bundle(harness.tmp, ["true"])
    spec = json.loads((bundle / "config.json").read_text())
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1}]
    (bundle / "config.json").write_text(json.dumps(spec))
    with pytest.raises(Exception, match="no user namespace"):
        harness.rt.create(cid, bundle, 0, 1, 2)


# a daemon with --userns-remap=default ------------------------------------------------


@contextlib.contextmanager
def _restored(*paths: Path) -> Iterator[None]:
    saved = {p: p.read_bytes() if p.exists() else None for p in paths}
    try:
        yield
    finally:
        for p, data in saved.items():
            if data is None:
                p.unlink(missing_ok=True)
            else:
                p.write_bytes(data)


@pytest.fixture(scope="module")
def remapped(daemon_tools, run_id: str) -> Iterator:
    """A freightd with --userns-remap=default; dockremap removed after if it made it."""
    skip_unless_root()
    if shutil.which("useradd") is None:
        pytest.skip("needs useradd")
    existed = _user_exists("dockremap")
    tag = os.urandom(3).hex()
    root, cgroup_parent = Path(f"/tmp/freight-test-{run_id}-{tag}"), f"freight-test-{run_id}-{tag}"
    root.mkdir()
    with _restored(SUBUID, SUBGID, Path("/etc/passwd"), Path("/etc/group"),
                   Path("/etc/shadow"), Path("/etc/gshadow")):  # fmt: skip
        try:
            d = daemon_tools.start(root, cgroup_parent, "--userns-remap=default")
            try:
                boot = d.cli("image", "bootstrap", "busybox", timeout=120)
                assert boot.returncode == 0, boot.stderr.decode() + d.log_tail()
                yield d
            finally:
                ids = d.cli("ps", "-aq").stdout.decode().split()
                if ids:
                    d.cli("rm", "-f", *ids)
                daemon_tools.stop(d)
        finally:
            daemon_tools.cleanup(root, cgroup_parent)
            if not existed and _user_exists("dockremap"):
                subprocess.run(["userdel", "dockremap"], capture_output=True, check=False)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _remap_root() -> tuple[int, int]:
    def start(path: Path) -> int:
        for line in path.read_text().splitlines():
            if line.startswith("dockremap:"):
                return int(line.split(":")[1])
        raise AssertionError(f"no dockremap range in {path}")

    return start(SUBUID), start(SUBGID)


def _out(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).decode()


def test_default_remap_creates_dockremap(remapped) -> None:
    """Setup: --userns-remap=default on a host without dockremap. Outcome, as dockerd:
    the user exists and owns one 65536-id range in /etc/subuid and /etc/subgid."""
    assert _user_exists("dockremap")
    for path in (SUBUID, SUBGID):
        lines = [ln for ln in path.read_text().splitlines() if ln.startswith("dockremap:")]
        assert len(lines) == 1 and lines[0].endswith(":65536"), path.read_text()
    assert _remap_root()[0] >= 100000


def test_remapped_root_is_an_unprivileged_host_uid(remapped) -> None:
    """Attack: root in a container on a remapped daemon is host root. Safe outcome: the
    process is the dockremap range's first id on the host; inside, id says 0."""
    uid, gid = _remap_root()
    name = f"uns-{os.urandom(3).hex()}"
    started = remapped.cli("run", "-d", "--name", name, "busybox", "sleep", "30")
    assert started.returncode == 0, _out(started) + remapped.log_tail()
    try:
        pid = int(remapped.cli("inspect", "-f", "{{.State.Pid}}", name).stdout)
        assert _host_ids(pid) == (uid, gid)
        inside = remapped.cli("exec", name, "sh", "-c", "id -u; cat /proc/self/uid_map")
        assert inside.stdout.decode().split() == ["0", "0", str(uid), "65536"], _out(inside)
        maps = remapped.cli("inspect", "-f", "{{json .HostConfig.FreightIDMappings}}", name)
        assert json.loads(maps.stdout)["UIDMaps"] == [f"0:{uid}:65536"]
    finally:
        remapped.cli("rm", "-f", name)


def test_image_layers_are_not_chowned(remapped) -> None:
    """Attack (on the store): remapping rewrites the shared image layers' owners, or
    a container's writes leak into them. Safe outcome: the rootfs is an idmapped view,
    the layers keep their ids, the container's new file is in its own upper dir,
    stored unshifted, and seen as root's inside."""
    name = f"uns-{os.urandom(3).hex()}"
    run = remapped.cli("run", "--name", name, "busybox", "sh", "-c",
                       "touch /newfile && stat -c %u /newfile /bin/busybox")  # fmt: skip
    try:
        assert run.stdout.decode().split() == ["0", "0"], _out(run) + remapped.log_tail()
        info = json.loads(remapped.cli("inspect", name).stdout)[0]
        upper = Path(info["GraphDriver"]["Data"]["UpperDir"])
        assert (upper / "newfile").stat().st_uid == 0
        lower = info["GraphDriver"]["Data"]["LowerDir"].split(":")[0]
        assert (Path(lower) / "bin" / "busybox").stat().st_uid == 0
    finally:
        remapped.cli("rm", "-f", name)


def test_cp_through_a_running_remapped_container_keeps_its_ids(remapped, tmp_path) -> None:
    """`cp` into a running remapped container writes through its live, idmapped rootfs.
    Outcome as dockerd's: the file is the container's root's inside (not nobody),
    stored unshifted in the upper dir; `cp` out gives an archive with the container's
    own ids (0 and 1000 here), not host ones."""
    import io
    import tarfile

    name = f"uns-{os.urandom(3).hex()}"
    started = remapped.cli("run", "-d", "--name", name, "busybox", "sleep", "60")
    assert started.returncode == 0, _out(started)
    try:
        (tmp_path / "hello").write_text("hi\n")
        copied = remapped.cli("cp", str(tmp_path / "hello"), f"{name}:/hello")
        assert copied.returncode == 0, _out(copied)
        seen = remapped.cli("exec", name, "sh", "-c", "stat -c '%u %g' /hello; "
                            "touch /owned && chown 1000:1000 /owned")  # fmt: skip
        assert seen.stdout.decode().split() == ["0", "0"], _out(seen)
        info = json.loads(remapped.cli("inspect", name).stdout)[0]
        upper = Path(info["GraphDriver"]["Data"]["UpperDir"])
        assert (upper / "hello").stat().st_uid == 0
        for path, ids in (("/hello", (0, 0)), ("/owned", (1000, 1000))):
            out = remapped.cli("cp", f"{name}:{path}", "-")
            assert out.returncode == 0, _out(out)
            with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
                member = tar.getmembers()[0]
            assert (member.uid, member.gid) == ids, path
    finally:
        remapped.cli("rm", "-f", name)


def test_volume_files_get_the_mapped_owner(remapped) -> None:
    """Outcome as dockerd's: files root creates in a named volume belong to the
    remapped root on the host, not to host root."""
    uid, gid = _remap_root()
    vol = f"unsvol-{os.urandom(3).hex()}"
    try:
        run = remapped.cli("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c",
                           "echo hi > /data/f && mkdir /data/d")  # fmt: skip
        assert run.returncode == 0, _out(run) + remapped.log_tail()
        mountpoint = Path(
            json.loads(remapped.cli("volume", "inspect", vol).stdout)[0]["Mountpoint"]
        )
        for path in (mountpoint / "f", mountpoint / "d"):
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (uid, gid)
    finally:
        remapped.cli("volume", "rm", "-f", vol)


def test_userns_host_opts_out(remapped) -> None:
    """--userns=host on a remapped daemon: the host's user namespace, as without remap."""
    run = remapped.cli("run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map")
    assert run.stdout.decode().split() == ["0", "0", "4294967295"], _out(run)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--privileged"], "privileged mode is incompatible with user namespaces.  You must "
                           "run the container in the host namespace when running privileged mode"),
        (["--net=host"], "cannot share the host's network namespace when user namespaces are enabled"),
        (["--pid=host"], "cannot share the host PID namespace when user namespaces are enabled"),
    ],
)  # fmt: skip
def test_what_cannot_run_in_a_userns_is_refused(remapped, flags: list[str], message: str) -> None:
    """Misuse: host-level privileges on a remapped daemon. Safe outcome: dockerd's errors,
    nothing created; with --userns=host they work."""
    before = remapped.cli("ps", "-aq").stdout
    run = remapped.cli("run", "--rm", *flags, "busybox", "true")
    assert run.returncode == 125 and message in _out(run), _out(run)
    assert remapped.cli("ps", "-aq").stdout == before
    ok = remapped.cli("run", "--rm", *flags, "--userns=host", "busybox", "true")
    assert ok.returncode == 0, _out(ok)


def test_runc_gets_the_same_user_namespace(remapped) -> None:
    """runc on the same bundles: the maps and the idmapped rootfs work for it too."""
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    uid, _ = _remap_root()
    run = remapped.cli("run", "--rm", "--runtime", "runc", "busybox", "sh", "-c",
                       "cat /proc/self/uid_map; touch /x && echo wrote")  # fmt: skip
    assert run.stdout.decode().split() == ["0", str(uid), "65536", "wrote"], _out(run)


def test_docker_cli_sees_usernsmode(remapped) -> None:
    """The API: HostConfig.UsernsMode from the docker CLI, echoed by inspect."""
    name = f"uns-{os.urandom(3).hex()}"
    made = remapped.docker("create", "--name", name, "--userns=host", "busybox", "true")
    try:
        assert made.returncode == 0, _out(made)
        mode = remapped.docker("inspect", "-f", "{{.HostConfig.UsernsMode}}", name)
        assert mode.stdout.decode().strip() == "host"
    finally:
        remapped.docker("rm", "-f", name)


# auto and explicit maps on the session daemon ------------------------------------------


@pytest.fixture
def containers_pool() -> Iterator[int]:
    """Ranges for user "containers" (the --userns=auto pool), removed afterwards."""
    skip_unless_root()
    start = 3_000_000_000
    with _restored(SUBUID, SUBGID):
        for path in (SUBUID, SUBGID):
            with open(path, "a") as f:
                f.write(f"containers:{start}:{4 * 65536}\n")
        yield start


def test_userns_auto_picks_distinct_free_ranges(freightd, containers_pool: int) -> None:
    """Attack: two auto containers share host ids and so can signal or ptrace each other.
    Safe outcome: each gets its own 65536 ids from the pool."""
    names = [f"auto-{os.urandom(3).hex()}" for _ in range(2)]
    try:
        starts = []
        for name in names:
            run = freightd.cli(
                "run", "-d", "--name", name, "--userns=auto", "busybox", "sleep", "30"
            )
            assert run.returncode == 0, _out(run) + freightd.log_tail()
            pid = int(freightd.cli("inspect", "-f", "{{.State.Pid}}", name).stdout)
            starts.append(_host_ids(pid)[0])
        assert starts[0] >= containers_pool and abs(starts[0] - starts[1]) >= 65536, starts
    finally:
        freightd.cli("rm", "-f", *names)


def test_explicit_uidmap(freightd) -> None:
    """--uidmap/--gidmap (podman's flags): exactly those maps, GIDs following UIDs."""
    run = freightd.cli("run", "--rm", "--uidmap", "0:400000:2000", "busybox", "sh", "-c",
                       "cat /proc/self/uid_map /proc/self/gid_map; id -u")  # fmt: skip
    words = run.stdout.decode().split()
    assert words == ["0", "400000", "2000", "0", "400000", "2000", "0"], _out(run)
    bad = freightd.cli("run", "--rm", "--uidmap", "0:1", "busybox", "true")
    assert bad.returncode != 0 and "CONTAINER_ID:HOST_ID:SIZE" in _out(bad)


def test_info_lists_the_security_options(remapped) -> None:
    """`info` says what protects containers (as dockerd): seccomp with its profile, and
    userns on a remapped daemon; docker's CLI and freight's print the same block."""
    api = json.loads(remapped.docker("info", "--format", "{{json .SecurityOptions}}").stdout)
    assert api[0] == "name=seccomp,profile=builtin" and "name=userns" in api
    blocks = []
    for client in (remapped.cli, remapped.docker):
        text = client("info").stdout.decode()
        start = text.index(" Security Options:\n")
        block = text[start:].split("\n Kernel Version:")[0]
        blocks.append(block)
    assert blocks[0] == blocks[1]
    assert "  seccomp\n   Profile: builtin\n" in blocks[0] and "  userns" in blocks[0]
