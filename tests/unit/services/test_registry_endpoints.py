"""Which endpoints and schemes freightd uses per registry (no traffic)."""

from __future__ import annotations

from freight.daemon.config import load
from freight.services.registries import Registries, RegistryOptions, normalize_host


def test_loopback_and_named_registries_are_insecure() -> None:
    regs = Registries(RegistryOptions(insecure=["reg.lan:5000", "10.1.0.0/16"]))
    assert regs.is_insecure("127.0.0.1:5000")
    assert regs.is_insecure("127.8.9.1")
    assert regs.is_insecure("localhost:5000")
    assert regs.is_insecure("reg.lan:5000")
    assert regs.is_insecure("10.1.2.3:443")
    assert not regs.is_insecure("reg.lan:5001")
    assert not regs.is_insecure("10.2.0.1")
    assert not regs.is_insecure("docker.io")


def test_docker_hub_mirrors_first_and_credentials_only_to_the_registry() -> None:
    regs = Registries(RegistryOptions(mirrors=["https://mirror.example:5000/"]))
    eps = regs.endpoints("docker.io")
    assert [e.url for e in eps] == ["https://mirror.example:5000", "https://registry-1.docker.io"]
    assert all(e.verify for e in eps)
    assert [e.url for e in regs.endpoints("quay.io")] == ["https://quay.io"]
    from freight.distribution.auth import Credentials

    clients = regs.clients("docker.io", Credentials("u", "p"))
    try:
        assert [c.credentials.empty for c in clients] == [True, False]
    finally:
        for c in clients:
            c.close()


def test_normalize_host() -> None:
    assert normalize_host("https://index.docker.io/v1/") == "docker.io"
    assert normalize_host("") == "docker.io"
    assert normalize_host("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"


def test_daemon_flags() -> None:
    cfg, _ = load([
        "--insecure-registry", "a:1", "--insecure-registry", "b:2",
        "--registry-mirror", "http://127.0.0.1:5001", "--max-concurrent-downloads", "7",
    ])  # fmt: skip
    assert cfg.insecure_registries == ["a:1", "b:2"]
    assert cfg.registry_mirrors == ["http://127.0.0.1:5001"]
    assert cfg.max_concurrent_downloads == 7
    assert load([])[0].max_concurrent_downloads == 3
