"""The real docker CLI and docker-py against freightd: networks and published ports."""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.request

import pytest


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


@pytest.fixture
def name(freightd):
    made = f"compat-net-{secrets.token_hex(3)}"
    yield made
    freightd.docker("rm", "-f", made + "-c")
    freightd.docker("network", "rm", made)


def test_docker_network_commands(freightd, name: str) -> None:
    d = freightd
    nid = ok(d.docker("network", "create", "--subnet", "10.197.3.0/24", "--label", "a=b",
                      "--internal", name)).strip()  # fmt: skip
    assert len(nid) == 64
    listing = ok(d.docker("network", "ls", "--filter", f"name={name}", "--format", "{{.Name}} {{.Driver}}"))  # fmt: skip
    assert listing.strip() == f"{name} bridge"
    [net] = json.loads(ok(d.docker("network", "inspect", name)))
    assert net["Id"] == nid and net["Internal"] is True and net["Labels"] == {"a": "b"}
    assert net["IPAM"]["Config"] == [{"Subnet": "10.197.3.0/24", "Gateway": "10.197.3.1"}]
    ok(d.docker("run", "-d", "--name", name + "-c", "--network", name, "--ip", "10.197.3.7",
                "busybox", "sleep", "60"))  # fmt: skip
    members = json.loads(ok(d.docker("network", "inspect", name)))[0]["Containers"]
    assert [m["IPv4Address"] for m in members.values()] == ["10.197.3.7/24"]
    result = d.docker("network", "rm", name)
    assert result.returncode != 0 and b"active endpoints" in result.stderr
    ok(d.docker("rm", "-f", name + "-c"))
    assert ok(d.docker("network", "rm", name)).strip() == name
    result = d.docker("network", "inspect", name)
    assert result.returncode != 0 and b"not found" in result.stderr


def test_docker_run_publish_all_port_and_ps(freightd, name: str) -> None:
    d = freightd
    cname = name + "-c"
    script = "echo compat > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
    ok(d.docker("run", "-d", "--name", cname, "--expose", "8080", "-P", "busybox", "sh", "-c", script))  # fmt: skip
    mapping = ok(d.docker("port", cname, "8080/tcp")).split()[0]
    assert mapping.startswith("0.0.0.0:")
    port = mapping.split(":")[1]
    assert f"0.0.0.0:{port}->8080/tcp" in ok(d.docker("ps", "--format", "{{.Ports}}"))
    body = ""
    for _ in range(50):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
                body = r.read().decode()
            break
        except OSError:
            subprocess.run(["sleep", "0.1"], stdin=subprocess.DEVNULL)
    assert body.strip() == "compat"


def test_docker_py_networks(freightd, name: str) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=freightd.host)
    try:
        net = client.networks.create(name, driver="bridge")
        c = client.containers.run("busybox", ["sleep", "60"], name=name + "-c", detach=True)
        net.connect(c, aliases=["pyalias"])
        net.reload()
        assert [x.name for x in net.containers] == [name + "-c"]
        c.reload()
        assert set(c.attrs["NetworkSettings"]["Networks"]) == {"bridge", name}
        net.disconnect(c)
        c.remove(force=True)
        assert name in [n.name for n in client.networks.list()]
        net.remove()
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(name)
    finally:
        client.close()
