"""Container networking end to end, as root: bridges, DNS, isolation, published ports.

Every address used is the test daemon's own: its bridges' gateways (the
host's side of networks this run created), containers' addresses and
127.0.0.1. Names no container has are never resolved (the daemon's
upstream is 127.0.0.1, see conftest).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def fails(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout.decode(errors="replace")
    return result.stderr.decode(errors="replace")


def inspect(d, ref: str, kind: str = "container") -> dict:
    return json.loads(ok(d.cli(kind, "inspect", ref)))[0]


def gateway(d, network: str = "bridge") -> str:
    return inspect(d, network, "network")["IPAM"]["Config"][0]["Gateway"]


def http_get(url: str, timeout: float = 10) -> str:
    """GET from the host, retried while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.1)


def web(d, name: str, *flags: str, body: str = "hello") -> str:
    """A busybox httpd on port 8080 serving `body` at /index.html."""
    script = f"echo {body} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
    return ok(d.cli("run", "-d", "--name", name, *flags, "busybox", "sh", "-c", script)).strip()


@pytest.fixture
def names(freightd):
    """Unique names; every container and network made with them is removed afterwards."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(f"{prefix}-{secrets.token_hex(3)}")
        return made[-1]

    yield make
    for name in made:
        freightd.cli("rm", "-f", name)
    for name in made:
        freightd.cli("network", "rm", name)


def test_user_network_names_reach_and_other_networks_cannot(freightd, names) -> None:
    d = freightd
    net, other = names("net"), names("net")
    ok(d.cli("network", "create", net))
    ok(d.cli("network", "create", other))
    server = names("srv")
    web(d, server, "--network", net, "--network-alias", "web-alias", body="from-srv")
    client = ok(
        d.cli("run", "--rm", "--network", net, "busybox", "sh", "-c",
              f"grep nameserver /etc/resolv.conf; ping -c1 -W2 {server} >/dev/null && echo ping-ok;"
              f" timeout 5 wget -qO- http://{server}:8080/index.html;"
              " timeout 5 wget -qO- http://web-alias:8080/index.html")
    )  # fmt: skip
    assert f"nameserver {gateway(d, net)}" in client
    assert "ping-ok" in client
    assert client.count("from-srv") == 2
    # Another network: the name is unknown there, and the address is unreachable.
    ip = inspect(d, server)["NetworkSettings"]["Networks"][net]["IPAddress"]
    isolated = d.cli(
        "run", "--rm", "--network", other, "busybox", "sh", "-c",
        f"nslookup {server} >/dev/null 2>&1 && echo resolved;"
        f" timeout 3 wget -qO- http://{ip}:8080/index.html || echo unreachable",
    )  # fmt: skip
    out = ok(isolated)
    assert "resolved" not in out and "unreachable" in out


def test_publish_all_maps_exposed_ports_and_ps_shows_them(freightd, names) -> None:
    d = freightd
    name = names("pub")
    web(d, name, "--expose", "8080", "--expose", "5353/udp", "-P")
    ports = inspect(d, name)["NetworkSettings"]["Ports"]
    assert set(ports) == {"8080/tcp", "5353/udp"}
    tcp = int(ports["8080/tcp"][0]["HostPort"])
    assert ports["8080/tcp"][0]["HostIp"] == "0.0.0.0" and tcp > 1024
    row = ok(d.cli("ps", "--filter", f"name={name}", "--format", "{{.Ports}}"))
    assert f"0.0.0.0:{tcp}->8080/tcp" in row and "->5353/udp" in row
    assert ok(d.cli("port", name, "8080")).strip() == f"0.0.0.0:{tcp}"
    assert f"8080/tcp -> 0.0.0.0:{tcp}" in ok(d.cli("port", name))


def test_published_port_from_host_other_container_and_loopback(freightd, names) -> None:
    d = freightd
    name = names("srv")
    web(d, name, "-p", "127.0.0.1::8080", "-p", "8080", body="published")
    ports = inspect(d, name)["NetworkSettings"]["Ports"]["8080/tcp"]
    loopback = next(p["HostPort"] for p in ports if p["HostIp"] == "127.0.0.1")
    anywhere = next(p["HostPort"] for p in ports if p["HostIp"] == "0.0.0.0")
    gw = gateway(d)
    assert http_get(f"http://127.0.0.1:{loopback}/index.html").strip() == "published"
    assert http_get(f"http://{gw}:{anywhere}/index.html").strip() == "published"
    assert http_get(f"http://127.0.0.1:{anywhere}/index.html").strip() == "published"
    from_container = ok(
        d.cli(
            "run",
            "--rm",
            "busybox",
            "timeout",
            "5",
            "wget",
            "-qO-",
            f"http://{gw}:{anywhere}/index.html",
        )
    )
    assert from_container.strip() == "published"


def test_port_in_use_fails_the_start_and_leaves_nothing(freightd, names) -> None:
    d = freightd
    first, second = names("one"), names("two")
    web(d, first, "-p", "127.0.0.1::8080")
    port = inspect(d, first)["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    before = _links(d)
    err = fails(d.cli("run", "-d", "--name", second, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30"))  # fmt: skip
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in err
    assert inspect(d, second)["State"]["Running"] is False
    assert _links(d) == before
    assert not (d.exec_root / "netns" / inspect(d, second)["Id"]).exists()


def test_network_modes_host_none_container(freightd, names) -> None:
    d = freightd
    host_links = ok(d.cli("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"))
    assert "lo:" in host_links and len(host_links.splitlines()) == len(_all_links())
    none = ok(d.cli("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert [line.split(":")[1].strip() for line in none.splitlines()] == ["lo"]
    server = names("srv")
    web(d, server, body="shared")
    shared = ok(
        d.cli("run", "--rm", "--network", f"container:{server}", "busybox", "timeout", "5",
              "wget", "-qO-", "http://127.0.0.1:8080/index.html")
    )  # fmt: skip
    assert shared.strip() == "shared"


def test_connect_and_disconnect_a_running_container(freightd, names) -> None:
    d = freightd
    net, box = names("net"), names("box")
    ok(d.cli("network", "create", "--subnet", "10.199.77.0/24", net))
    ok(d.cli("run", "-d", "--name", box, "busybox", "sleep", "300"))
    ok(d.cli("network", "connect", "--alias", "boxy", "--ip", "10.199.77.9", net, box))
    addrs = ok(d.cli("exec", box, "ip", "-o", "-4", "addr"))
    assert "eth1" in addrs and "10.199.77.9/24" in addrs
    assert inspect(d, box)["NetworkSettings"]["Networks"][net]["IPAddress"] == "10.199.77.9"
    members = inspect(d, net, "network")["Containers"]
    assert [m["Name"] for m in members.values()] == [box]
    reached = ok(d.cli("run", "--rm", "--network", net, "busybox", "ping", "-c1", "-W2", "boxy"))
    assert "10.199.77.9" in reached
    err = fails(d.cli("network", "rm", net))
    assert "active endpoints" in err
    ok(d.cli("network", "disconnect", net, box))
    assert "eth1" not in ok(d.cli("exec", box, "ip", "-o", "link"))
    assert net not in inspect(d, box)["NetworkSettings"]["Networks"]


def test_bad_input_is_refused_and_leaves_no_network_state(freightd, names) -> None:
    d = freightd
    net = names("net")
    ok(d.cli("network", "create", "--subnet", "10.198.1.0/24", net))
    before = (_links(d), ok(d.cli("network", "ls", "-q")))
    assert "Pool overlaps" in fails(d.cli("network", "create", "--subnet", "10.198.1.128/25", names("x")))  # fmt: skip
    assert "invalid CIDR address: 10.198.2.0/33" in fails(
        d.cli("network", "create", "--subnet", "10.198.2.0/33", names("x"))
    )
    assert "no matching subnet for gateway 10.9.9.1" in fails(
        d.cli("network", "create", "--subnet", "10.198.3.0/24", "--gateway", "10.9.9.1", names("x"))
    )
    assert "already exists" in fails(d.cli("network", "create", net))
    assert "network nosuch-net not found" in fails(
        d.cli("network", "connect", "nosuch-net", "whatever")
    )
    assert "Invalid containerPort: 80x" in fails(
        d.cli("run", "--rm", "-p", "80x", "busybox", "true")
    )
    assert "network nosuch-net not found" in fails(
        d.cli("run", "--rm", "--network", "nosuch-net", "busybox", "true")
    )
    assert (_links(d), ok(d.cli("network", "ls", "-q"))) == before


def test_ipv6_and_internal_networks(freightd, names) -> None:
    d = freightd
    v6, internal, peer = names("v6"), names("int"), names("peer")
    ok(d.cli("network", "create", "--ipv6", "--subnet", "10.196.6.0/24", "--subnet", "fd00:196:6::/64", v6))  # fmt: skip
    ok(d.cli("run", "-d", "--name", peer, "--network", v6, "busybox", "sleep", "60"))
    assert (
        inspect(d, peer)["NetworkSettings"]["Networks"][v6]["GlobalIPv6Address"] == "fd00:196:6::2"
    )
    out = ok(d.cli("run", "--rm", "--network", v6, "busybox", "sh", "-c",
                   f"ip -6 -o addr show eth0; ping6 -c1 -W2 {peer} >/dev/null && echo ping6-ok"))  # fmt: skip
    assert "fd00:196:6::3/64" in out and "ping6-ok" in out
    ok(d.cli("network", "create", "--internal", internal))
    routes = ok(d.cli("run", "--rm", "--network", internal, "busybox", "ip", "route"))
    assert "default" not in routes


def test_bridge_name_option_labels_filters_and_prune(freightd, names) -> None:
    d = freightd
    used, unused = names("used"), names("unused")
    bridge = "frt" + secrets.token_hex(4)
    ok(d.cli("network", "create", "-o", f"com.docker.network.bridge.name={bridge}",
             "--label", "team=net", used))  # fmt: skip
    assert os.path.exists(f"/sys/class/net/{bridge}")
    ok(d.cli("network", "create", unused))
    box = names("box")
    ok(d.cli("run", "-d", "--name", box, "--network", used, "busybox", "sleep", "60"))
    listed = ok(d.cli("network", "ls", "--filter", "label=team=net", "--format", "{{.Name}}"))
    assert listed.split() == [used]
    builtin = ok(d.cli("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}"))
    assert builtin.split() == ["bridge", "host", "none"]
    pruned = ok(d.cli("network", "prune", "-f"))
    assert unused in pruned and used not in pruned
    ok(d.cli("rm", "-f", box))
    ok(d.cli("network", "rm", used))
    assert not os.path.exists(f"/sys/class/net/{bridge}")


def test_api_statuses(freightd, names) -> None:
    """404 for a missing network, 409 for removing one in use (docker-py's HTTP errors)."""
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=freightd.host)
    try:
        with pytest.raises(docker.errors.NotFound):
            client.networks.get("nosuch-net")
        net = client.networks.create(names("net"))
        box = names("box")
        client.containers.run("busybox", ["sleep", "60"], name=box, network=net.name, detach=True)
        with pytest.raises(docker.errors.APIError) as info:
            net.remove()
        assert info.value.status_code == 409
    finally:
        client.close()


def test_stop_and_remove_leave_nothing_behind(freightd, names) -> None:
    d = freightd
    before = _links(d)
    name = names("tmp")
    web(d, name, "-p", "127.0.0.1::8080")
    cid = inspect(d, name)["Id"]
    assert _links(d) != before
    ok(d.cli("stop", "-t", "1", name))
    assert _links(d) == before
    assert not (d.exec_root / "netns" / cid).exists()
    ok(d.cli("rm", name))
    state = json.loads((d.data_root / "network" / "state.json").read_text())
    assert cid not in state["containers"]


def test_daemon_restart_keeps_published_ports(daemon_tools, run_id) -> None:
    root = Path(f"/tmp/freight-test-{run_id}-restart")
    root.mkdir(parents=True)
    cgroup_parent = f"freight-test-{run_id}-restart"
    # --live-restore: without it a daemon stop stops the containers.
    d = daemon_tools.start(root, cgroup_parent, "--live-restore")
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        web(d, "keeper", "-p", "127.0.0.1::8080", body="kept")
        port = inspect(d, "keeper")["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        assert http_get(f"http://127.0.0.1:{port}/index.html").strip() == "kept"
        daemon_tools.stop(d)
        d = daemon_tools.start(root, cgroup_parent, "--live-restore")
        assert http_get(f"http://127.0.0.1:{port}/index.html").strip() == "kept"
        assert f"127.0.0.1:{port}->8080/tcp" in ok(d.cli("ps", "--format", "{{.Ports}}"))
        # A crash: the container is stopped while no daemon runs; the next one cleans up.
        cid, pid = inspect(d, "keeper")["Id"], inspect(d, "keeper")["State"]["Pid"]
        daemon_tools.stop(d, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        d = daemon_tools.start(root, cgroup_parent)
        assert inspect(d, "keeper")["State"]["Running"] is False
        assert _links(d) == [] and not (d.exec_root / "netns" / cid).exists()
        assert http_get(f"http://127.0.0.1:{port}/index.html", timeout=1) == ""
        ok(d.cli("start", "keeper"))
        port = inspect(d, "keeper")["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        assert http_get(f"http://127.0.0.1:{port}/index.html").strip() == "kept"
        bridges = _bridges(d)
        ok(d.cli("rm", "-f", "keeper"))
        daemon_tools.stop(d)
        # A clean shutdown with nothing running leaves no bridge, namespace or rule.
        assert not _netns_mounts(root)
        assert not [b for b in bridges if os.path.exists(f"/sys/class/net/{b}")]
    finally:
        daemon_tools.stop(d)
        daemon_tools.cleanup(root, cgroup_parent)


def _all_links() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def _bridges(d) -> list[str]:
    out = []
    for line in ok(d.cli("network", "ls", "--filter", "driver=bridge", "-q")).split():
        n = inspect(d, line, "network")
        out.append(n["Options"].get("com.docker.network.bridge.name") or "br-" + n["Id"][:12])
    return out


def _links(d) -> list[str]:
    """The veth ends plugged into this daemon's bridges (other test runs have their own)."""
    ports = []
    for bridge in _bridges(d):
        with contextlib.suppress(FileNotFoundError):
            ports += os.listdir(f"/sys/class/net/{bridge}/brif")
    return sorted(ports)


def _netns_mounts(root: Path) -> list[str]:
    return [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(root)) and "/netns/" in line.split()[1]
    ]
