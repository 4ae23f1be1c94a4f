"""cli.contexts: docker's context store (meta.json under sha256(name), TLS files
0600), the choice of endpoint (--context, -H, FREIGHT_HOST/DOCKER_HOST,
DOCKER_CONTEXT, currentContext), and round trips with the real docker CLI's
`docker context create/inspect` on the same directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from freight.cli import contexts
from freight.cli.contexts import Context, ContextError, TlsFlags
from freight.client.tlsconfig import TlsOptions


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "cfg")}


def _tls_sources(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in contexts.TLS_FILES:
        path = tmp_path / f"src-{name}"
        path.write_text(f"-- {name} --\n")
        out[name] = str(path)
    return out


def test_save_writes_dockers_layout(env, tmp_path: Path) -> None:
    ctx = Context("remote", "tcp://10.0.0.5:2376", "the build box")
    contexts.save(ctx, _tls_sources(tmp_path), env)
    ident = hashlib.sha256(b"remote").hexdigest()
    base = Path(env["DOCKER_CONFIG"]) / "contexts"
    meta = base / "meta" / ident / "meta.json"
    assert json.loads(meta.read_text()) == {
        "Name": "remote",
        "Metadata": {"Description": "the build box"},
        "Endpoints": {"docker": {"Host": "tcp://10.0.0.5:2376", "SkipTLSVerify": False}},
    }
    assert stat.S_IMODE(meta.stat().st_mode) == 0o644
    for name in contexts.TLS_FILES:
        f = base / "tls" / ident / "docker" / name
        assert f.read_text() == f"-- {name} --\n"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_load_gives_tls_options_from_the_stored_files(env, tmp_path: Path) -> None:
    contexts.save(Context("remote", "tcp://h:2376"), _tls_sources(tmp_path), env)
    ctx = contexts.load("remote", env)
    tls_path = Path(contexts.tls_dir("remote", env)) / "docker"
    assert ctx.host == "tcp://h:2376"
    assert ctx.tls() == TlsOptions(
        True, str(tls_path / "ca.pem"), str(tls_path / "cert.pem"), str(tls_path / "key.pem")
    )


def test_skip_tls_verify_without_files_is_unverified_tls(env) -> None:
    contexts.save(Context("loose", "tcp://h:2376", skip_tls_verify=True), {}, env)
    assert contexts.load("loose", env).tls() == TlsOptions(False, None, None, None)
    contexts.save(Context("plain", "unix:///run/x.sock"), {}, env)
    assert contexts.load("plain", env).tls() is None


def test_list_remove_exists(env) -> None:
    for name in ("zeta", "alpha"):
        contexts.save(Context(name, f"tcp://{name}:2376"), {}, env)
    assert [c.name for c in contexts.list_all(env)] == ["alpha", "zeta"]
    assert contexts.exists("zeta", env)
    contexts.remove("zeta", env)
    assert not contexts.exists("zeta", env)
    assert [c.name for c in contexts.list_all(env)] == ["alpha"]


@pytest.mark.parametrize("name", ["a", "-x", "bad/name", "sp ace"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ContextError, match="is invalid, names are validated against regexp"):
        contexts.check_name(name)


def test_default_is_reserved() -> None:
    with pytest.raises(ContextError, match='"default" is a reserved context name'):
        contexts.check_name("default")


def test_missing_context_says_so(env) -> None:
    with pytest.raises(ContextError, match='context "ghost": context not found: open .*'):
        contexts.load("ghost", env)


# which endpoint ---------------------------------------------------------------------


def _current(env: dict[str, str], name: str) -> None:
    path = Path(env["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {}, "currentContext": name}))


def test_endpoint_order(env) -> None:
    contexts.save(Context("stored", "tcp://stored:2376"), {}, env)
    contexts.save(Context("other", "tcp://other:2376"), {}, env)
    # nothing named: the default context, the default socket
    host, tls = contexts.resolve_endpoint(None, None, None, env)
    assert host.startswith("unix://") and tls is None
    _current(env, "stored")
    assert contexts.resolve_endpoint(None, None, None, env)[0] == "tcp://stored:2376"
    assert contexts.resolve_endpoint(None, None, None, {**env, "DOCKER_CONTEXT": "other"})[0] == (
        "tcp://other:2376"
    )
    # a host (flag or environment) means the default context
    assert contexts.resolve_endpoint("tcp://flag:1", None, None, env)[0] == "tcp://flag:1"
    assert contexts.resolve_endpoint(None, None, None, {**env, "DOCKER_HOST": "tcp://e:2"})[0] == (
        "tcp://e:2"
    )
    assert contexts.resolve_endpoint(None, "other", None, env)[0] == "tcp://other:2376"


def test_context_and_host_together_conflict(env) -> None:
    with pytest.raises(ContextError, match="cannot specify both --host and --context"):
        contexts.resolve_endpoint("tcp://h:1", "stored", None, env)


def test_current_context_gone_names_the_config_file(env) -> None:
    _current(env, "vanished")
    with pytest.raises(ContextError) as err:
        contexts.resolve_endpoint(None, None, None, env)
    path = os.path.join(env["DOCKER_CONFIG"], "config.json")
    assert str(err.value) == (
        f'Current context "vanished" is not found on the file system, '
        f"please check your config file at {path}"
    )


def test_default_context_takes_the_tls_flags(env, tmp_path: Path) -> None:
    flags = TlsFlags(tlsverify=True, cacert="/ca.pem", cert="/c.pem", key="/k.pem")
    host, tls = contexts.resolve_endpoint("tcp://h:2376", None, flags, env)
    assert host == "tcp://h:2376"
    assert tls == TlsOptions(True, "/ca.pem", "/c.pem", "/k.pem")


# with the real docker CLI -------------------------------------------------------------


@pytest.fixture
def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        pytest.skip("the docker CLI is not installed")
    return path


def test_docker_reads_what_we_write(docker_cli, env, tmp_path: Path) -> None:
    contexts.save(Context("ours", "tcp://10.1.2.3:2376", "made by freight"), _tls_sources(tmp_path), env)  # fmt: skip
    r = subprocess.run(
        [docker_cli, "context", "inspect", "ours"], env={**os.environ, **env},
        capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    got = json.loads(r.stdout)[0]
    assert got["Name"] == "ours"
    assert got["Metadata"] == {"Description": "made by freight"}
    assert got["Endpoints"]["docker"]["Host"] == "tcp://10.1.2.3:2376"
    assert got["Storage"]["TLSPath"] == contexts.tls_dir("ours", env)


def _real_certs(tmp_path: Path) -> dict[str, str]:
    """PEM files docker accepts (it parses them): tests/integration/tlscerts.py makes them."""
    import importlib.util

    path = Path(__file__).parents[2] / "integration" / "tlscerts.py"
    spec = importlib.util.spec_from_file_location("freight_ctx_tlscerts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    client = module.make_certs(tmp_path / "certs").client_dir
    return {name: str(client / name) for name in contexts.TLS_FILES}


def test_we_read_what_docker_writes(docker_cli, env, tmp_path: Path) -> None:
    src = _real_certs(tmp_path)
    spec = (
        f"host=tcp://10.9.8.7:2376,ca={src['ca.pem']},cert={src['cert.pem']},key={src['key.pem']}"
    )
    r = subprocess.run(
        [docker_cli, "context", "create", "theirs", "--description", "by docker",
         "--docker", spec], env={**os.environ, **env}, capture_output=True,
        stdin=subprocess.DEVNULL, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    ctx = contexts.load("theirs", env)
    assert (ctx.host, ctx.description) == ("tcp://10.9.8.7:2376", "by docker")
    tls = ctx.tls()
    assert tls is not None and tls.verify
    assert Path(tls.cacert).read_bytes() == Path(src["ca.pem"]).read_bytes()
    assert Path(tls.key).read_bytes() == Path(src["key.pem"]).read_bytes()
    r = subprocess.run(
        [docker_cli, "context", "use", "theirs"], env={**os.environ, **env},
        capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert contexts.resolve_endpoint(None, None, None, env)[0] == "tcp://10.9.8.7:2376"
