"""The real docker CLI and docker-py against freightd: volumes, -v and cp."""

from __future__ import annotations

import io
import json
import secrets
import tarfile

import pytest


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result.stdout.decode()


def test_docker_volume_commands(freightd) -> None:
    vol = f"dv-{secrets.token_hex(3)}"
    assert ok(freightd.docker("volume", "create", "--label", "team=storage", vol)) == f"{vol}\n"
    assert vol in ok(freightd.docker("volume", "ls", "--format", "{{.Name}}")).split()
    listed = ok(freightd.docker("volume", "ls", "-q", "--filter", "label=team=storage"))
    assert vol in listed.split()
    info = json.loads(ok(freightd.docker("volume", "inspect", vol)))[0]
    assert info["Name"] == vol and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "storage"}
    assert info["Mountpoint"].endswith(f"/volumes/{vol}/_data")
    ok(freightd.docker("run", "--rm", "--network", "none", "-v", f"{vol}:/d", "busybox",
                       "sh", "-c", "echo kept > /d/f"))  # fmt: skip
    out = ok(freightd.docker("run", "--rm", "--network", "none", "-v", f"{vol}:/d", "busybox",
                             "cat", "/d/f"))  # fmt: skip
    assert out == "kept\n"
    cid = ok(freightd.docker("create", "--network", "none", "-v", f"{vol}:/d", "busybox")).strip()
    result = freightd.docker("volume", "rm", vol)
    assert result.returncode != 0
    assert f"remove {vol}: volume is in use - [{cid}]" in result.stderr.decode()
    ok(freightd.docker("rm", cid))
    assert ok(freightd.docker("volume", "rm", vol)) == f"{vol}\n"
    result = freightd.docker("volume", "inspect", vol)
    assert result.returncode != 0 and "no such volume" in result.stderr.decode().lower()


def test_docker_cp_both_ways(freightd, tmp_path) -> None:
    cid = ok(freightd.docker("run", "-d", "--network", "none", "busybox", "sleep", "300")).strip()
    try:
        (tmp_path / "dir").mkdir()
        (tmp_path / "dir" / "f.txt").write_text("to the container\n")
        ok(freightd.docker("cp", str(tmp_path / "dir"), f"{cid}:/tmp/"))
        ok(freightd.docker("cp", str(tmp_path / "dir" / "f.txt"), f"{cid}:/tmp/renamed"))
        out = ok(freightd.docker("exec", cid, "cat", "/tmp/dir/f.txt", "/tmp/renamed"))
        assert out == "to the container\n" * 2
        ok(
            freightd.docker(
                "exec", cid, "sh", "-c", "mkdir /out; echo back > /out/b; ln -s b /out/l"
            )
        )
        ok(freightd.docker("cp", f"{cid}:/out", str(tmp_path / "out")))
        assert (tmp_path / "out" / "b").read_text() == "back\n"
        assert (tmp_path / "out" / "l").is_symlink()
        ok(freightd.docker("cp", "-L", f"{cid}:/out/l", str(tmp_path / "followed")))
        assert (tmp_path / "followed").read_text() == "back\n"
        result = freightd.docker("cp", str(tmp_path / "dir" / "f.txt"), f"{cid}:/nope/x")
        assert result.returncode != 0
        assert "Could not find the file /nope in container" in result.stderr.decode()
        result = freightd.docker("cp", f"{cid}:/nope", str(tmp_path))
        assert result.returncode != 0
        assert "Could not find the file /nope in container" in result.stderr.decode()
    finally:
        freightd.docker("rm", "-f", cid)


@pytest.fixture
def client(freightd):
    docker = pytest.importorskip("docker")
    c = docker.DockerClient(base_url=freightd.host)
    yield c
    c.close()


def test_docker_py_volumes(client) -> None:
    vol = client.volumes.create(f"py-{secrets.token_hex(3)}", labels={"k": "v"})
    assert vol.attrs["Labels"] == {"k": "v"}
    assert vol.name in [v.name for v in client.volumes.list()]
    assert client.volumes.get(vol.name).attrs["Driver"] == "local"
    anon = client.containers.create("busybox", "true", volumes=["/anon"], network_mode="none")
    anon.remove(v=True)
    vol.remove()
    assert vol.name not in [v.name for v in client.volumes.list()]
    report = client.volumes.prune()
    assert "SpaceReclaimed" in report


def test_docker_py_put_and_get_archive(client) -> None:
    c = client.containers.run("busybox", "sleep 300", detach=True, network_mode="none")
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        assert c.exec_run("cat /tmp/hello.txt").output == b"hello\n"
        stream, stat = c.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt" and stat["size"] == 6
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("hello.txt")
            assert member is not None and member.read() == b"hello\n"
        stream, stat = c.get_archive("/tmp")
        assert stat["mode"] & (1 << 31)  # a directory, in Go's FileMode bits
        b"".join(stream)
    finally:
        c.remove(force=True)
