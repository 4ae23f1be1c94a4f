"""client.tlsconfig (the docker CLI's --tls* rules and the SSLContext) and
client.tlsstream (a TLS half-close) against a real ApiServer TLS listener on
loopback: stdin's end reaches the server as EOF and the output still comes
back, as `run -i` over TLS needs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.apiserver.http import ApiServer, HijackResponse, Request
from freight.apiserver.streams import HijackedStream
from freight.client.http import ClientError, EngineClient, TlsError
from freight.client.tlsconfig import TlsConfigError, TlsOptions, client_context, from_flags
from freight.daemon.listeners import server_ssl_context, tls_settings


def _load_tlscerts():
    path = Path(__file__).parents[2] / "integration" / "tlscerts.py"
    spec = importlib.util.spec_from_file_location("freight_tlscerts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tlscerts = _load_tlscerts()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return tlscerts.make_certs(tmp_path_factory.mktemp("tlscerts"))


# flags and environment --------------------------------------------------------------


def test_no_flags_no_env_is_plain_http() -> None:
    assert from_flags(environ={}) is None


def test_tls_alone_encrypts_without_checking(tmp_path: Path) -> None:
    opts = from_flags(tls=True, environ={"DOCKER_CERT_PATH": str(tmp_path)})
    assert opts == TlsOptions(False, None, None, None)  # no default files exist there
    ctx = client_context(opts)
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_tlsverify_takes_defaults_from_cert_path(certs) -> None:
    env = {"DOCKER_CERT_PATH": str(certs.client_dir)}
    opts = from_flags(tlsverify=True, environ=env)
    d = certs.client_dir
    assert opts == TlsOptions(True, str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem"))
    ctx = client_context(opts)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_docker_tls_verify_env_turns_verification_on(certs) -> None:
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs.client_dir)}
    assert from_flags(environ=env).verify is True
    assert from_flags(environ={"DOCKER_TLS_VERIFY": ""}) is None  # empty means unset
    # an explicit --tlsverify=false still means TLS, unverified
    assert from_flags(tlsverify=False, environ=env).verify is False


def test_flags_win_over_cert_path(certs, tmp_path: Path) -> None:
    env = {"DOCKER_CERT_PATH": str(certs.client_dir)}
    opts = from_flags(tlsverify=True, cacert=str(certs.ca), environ=env)
    assert opts.cacert == str(certs.ca)
    assert opts.cert == str(certs.client_dir / "cert.pem")


def test_cert_without_key_is_refused(certs) -> None:
    opts = TlsOptions(True, str(certs.ca), str(certs.client_dir / "cert.pem"), None)
    with pytest.raises(TlsConfigError, match="--tlscert and --tlskey must be given together"):
        client_context(opts)


def test_unreadable_files_are_named(certs, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(TlsConfigError, match=f"could not read CA certificate '{missing}'"):
        client_context(TlsOptions(True, missing))
    key = str(certs.client_dir / "key.pem")
    with pytest.raises(TlsConfigError, match=r"could not load X509 key pair \("):
        client_context(TlsOptions(True, str(certs.ca), missing, key))


# half-close over TLS -------------------------------------------------------------


class _Server:
    """An ApiServer with --tlsverify on 127.0.0.1, run in a thread's event loop."""

    def __init__(self, certs) -> None:
        tls = tls_settings(True, True, str(certs.ca), str(certs.server_cert),
                           str(certs.server_key))  # fmt: skip
        self.ctx = server_ssl_context(tls)
        self.loop = asyncio.new_event_loop()
        self.server: ApiServer | None = None
        self.seen_eof = threading.Event()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def app(request: Request) -> HijackResponse:
            return HijackResponse(self._echo_after_eof)

        self.server = ApiServer(app, ["tcp://127.0.0.1:0"], ssl_context=self.ctx)
        self.loop.run_until_complete(self.server.start())
        started.set()
        self.loop.run_forever()

    async def _echo_after_eof(self, stream: HijackedStream) -> None:
        """Read stdin to its end, then answer: possible only if EOF did not close us."""
        got = b""
        async for chunk in stream:
            got += chunk
        self.seen_eof.set()
        await asyncio.sleep(0.2)
        await stream.write(b"got " + got)
        await stream.write(b" (after EOF)")

    @property
    def host(self) -> str:
        return self.server.addresses[0]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def tls_server(certs) -> Iterator[_Server]:
    server = _Server(certs)
    yield server
    server.close()


def _client(certs, host: str, directory: Path | None = None) -> EngineClient:
    d = directory or certs.client_dir
    opts = TlsOptions(True, str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem"))
    return EngineClient(host, tls=opts, timeout=10)


def test_close_write_over_tls_is_eof_and_output_still_arrives(tls_server, certs) -> None:
    conn = _client(certs, tls_server.host).hijack("POST", "/containers/x/attach")
    try:
        conn.sendall(b"line one\n")
        conn.sendall(b"line two\n")
        conn.close_write()
        assert tls_server.seen_eof.wait(5), "the server never saw the end of stdin"
        got = b""
        while chunk := conn.recv(65536):
            got += chunk
    finally:
        conn.close()
    assert got == b"got line one\nline two\n (after EOF)"


def test_large_payload_both_ways(tls_server, certs) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: many records
    conn = _client(certs, tls_server.host).hijack("POST", "/exec/x/start")
    try:
        conn.sendall(payload)
        conn.close_write()
        got = b""
        while chunk := conn.recv(65536):
            got += chunk
    finally:
        conn.close()
    assert got == b"got " + payload + b" (after EOF)"


def test_client_certificate_of_another_ca_is_refused(tls_server, certs) -> None:
    # The server's alert is flushed before it drops the connection: the reason is known.
    with pytest.raises(TlsError) as err:
        _client(certs, tls_server.host, certs.rogue_dir).hijack("POST", "/containers/x/attach")
    assert str(err.value) == (
        f"error during connect: {tls_server.host}: remote error: tls: unknown certificate authority"
    )


def test_no_client_certificate_is_refused(tls_server, certs) -> None:
    opts = TlsOptions(True, str(certs.ca))
    with pytest.raises(TlsError, match="remote error: tls: certificate required"):
        EngineClient(tls_server.host, tls=opts, timeout=10).hijack("POST", "/containers/x/attach")


def test_plain_client_on_the_tls_port_gets_no_answer(tls_server) -> None:
    with pytest.raises(ClientError):
        EngineClient(tls_server.host, timeout=5).get_json("/version")
