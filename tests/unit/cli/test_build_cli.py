"""``freight build`` / ``freight builder prune`` without a daemon: flags, the
request they make, the chunked upload, and the plain, live and quiet views."""

from __future__ import annotations

import base64
import io
import json
import socket
import sys
import types
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from freight.cli.commands import build as b
from freight.cli.commands.builder import prune_main, prune_report
from freight.cli.flags import UsageError
from freight.cli.main import main
from freight.cli.session import CliError
from freight.client.api import EngineAPI
from freight.client.http import EngineClient, _send_chunked

IMAGE = "sha256:" + "2" * 64
LOG_TAIL = b.LOG_TAIL


def step(n: int, state: str, instruction: str, seconds: float = 0.0, stage: str = "0") -> dict:
    info = {"step": n, "total": 3, "stage": stage, "instruction": instruction, "state": state}
    return {"aux": {"freight": {**info, "seconds": seconds}}}


def stream(text: str) -> dict:
    return {"stream": text}


# What freightd sends for FROM busybox / RUN echo hi / CMD ["sh"] (cached).
MESSAGES = [
    stream("Step 1/3 : FROM busybox\n"),
    step(1, "running", "FROM busybox"),
    step(1, "done", "FROM busybox", 0.01),
    stream(" ---> abc123def456\n"),
    stream("Step 2/3 : RUN echo hi\n"),
    step(2, "running", "RUN echo hi"),
    stream(" ---> Running in 0123456789ab\n"),
    stream("hi\nthere\n"),
    stream("Removing intermediate container 0123456789ab\n"),
    step(2, "done", "RUN echo hi", 0.31),
    stream(" ---> 111111111111\n"),
    stream('Step 3/3 : CMD ["sh"]\n'),
    step(3, "running", 'CMD ["sh"]'),
    stream(" ---> Using cache\n"),
    step(3, "cached", 'CMD ["sh"]'),
    stream(" ---> 222222222222\n"),
    {"aux": {"ID": IMAGE}},
    stream("Successfully built 222222222222\n"),
    stream("Successfully tagged app:latest\n"),
]


def parse(*argv: str) -> dict:
    opts, args = b.BUILD.parse([*argv, "."])
    assert args == ["."]
    return opts


# ------------------------------------------------------------------ flags


def test_flags_become_request_options(tmp_path):
    secret = tmp_path / "token"
    secret.write_bytes(b"s3cret\n")
    opts = parse(
        "-t", "app:1", "--tag", "app:latest", "-f", "Other.Dockerfile",
        "--build-arg", "A=1", "--build-arg", "FROM_ENV", "--build-arg", "UNSET",
        "--label", "x=y", "--label", "bare", "--no-cache", "--pull", "--force-rm",
        "--rm=false", "--cache-from", "app:old", "--target", "build", "--platform",
        "linux/amd64", "--network", "none", "--add-host", "db:10.0.0.2",
        "--add-host", "v6=::1", "--secret", f"id=tok,src={secret}",
        "--secret", "id=pw,env=PW", "--progress=plain",
    )  # fmt: skip
    options = b.request_options(opts, {"FROM_ENV": "e", "PW": "hunter2"})
    assert opts["file"] == "Other.Dockerfile"
    assert options == {
        "tags": ["app:1", "app:latest"],
        "quiet": False,
        "no_cache": True,
        "pull": True,
        "rm": False,
        "force_rm": True,
        "build_args": {"A": "1", "FROM_ENV": "e", "UNSET": None},
        "labels": {"x": "y", "bare": ""},
        "cache_from": ["app:old"],
        "network_mode": "none",
        "extra_hosts": ["db:10.0.0.2", "v6:::1"],
        "platform": "linux/amd64",
        "target": "build",
        "secrets": {"tok": b"s3cret\n", "pw": b"hunter2"},
        "freight_steps": True,
    }


def test_defaults():
    options = b.request_options(parse(), {})
    assert options["rm"] is True and options["network_mode"] == "default"
    assert options["tags"] == [] and options["secrets"] == {} and options["platform"] is None
    assert b.request_options(parse(), {"DOCKER_DEFAULT_PLATFORM": "linux/arm64"})["platform"] == (
        "linux/arm64"
    )


def test_quiet_asks_for_no_steps():
    for argv in (["-q"], ["--progress", "quiet"]):
        options = b.request_options(parse(*argv), {})
        assert options["quiet"] is True and options["freight_steps"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--progress=fancy"], 'invalid argument "fancy" for "--progress" flag'),
        (["--add-host", "nohost"], 'bad format for add-host: "nohost"'),
        (["--add-host", "h:notanip"], "invalid IP address in add-host"),
        (["--secret", "src=/x"], "secret id is required"),
        (["--secret", "id=x,bogus=1"], "unexpected key 'bogus'"),
        (["--bogus"], "unknown flag: --bogus"),
    ],
)
def test_bad_flags(argv, message):
    with pytest.raises(UsageError) as info:
        b.BUILD.parse([*argv, "."])
    assert message in info.value.message


def test_argument_count_and_exit_status(capsys):
    assert main(["build"]) == 125
    assert '"freight build" requires exactly 1 argument.' in capsys.readouterr().err
    assert main(["build", "--progress=x", "."]) == 125
    assert main(["builder", "prune", "extra"]) == 125


def test_secret_without_src_reads_the_variable_named_like_it(tmp_path):
    assert b._secret_spec("id=TOKEN") == ("TOKEN", "env", "TOKEN")
    assert b.read_secrets([("TOKEN", "env", "TOKEN")], {"TOKEN": "v"}) == {"TOKEN": b"v"}
    with pytest.raises(CliError, match="TOKEN is not set"):
        b.read_secrets([("TOKEN", "env", "TOKEN")], {})
    with pytest.raises(CliError, match="failed to read secret x"):
        b.read_secrets([("x", "file", str(tmp_path / "missing"))], {})


def test_mode_choice():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert b.choose_mode("auto", False, io.StringIO()) == "plain"
    assert b.choose_mode("auto", False, Tty()) in ("tty", "plain")  # plain when TERM=dumb
    assert b.choose_mode("tty", False, io.StringIO()) == "tty"
    assert b.choose_mode("plain", True, Tty()) == "quiet"


def test_registry_config_carries_every_login(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    auth = base64.b64encode(b"me:pw").decode()
    doc = {"auths": {"https://index.docker.io/v1/": {"auth": auth}, "reg.local:5000": {}}}
    (tmp_path / "config.json").write_text(json.dumps(doc))
    assert b.registry_config() == {
        "https://index.docker.io/v1/": {
            "serveraddress": "https://index.docker.io/v1/",
            "username": "me",
            "password": "pw",
        }
    }


# ------------------------------------------------------------------ the request


class RecordingClient(EngineClient):
    def __init__(self, messages: list[dict]) -> None:
        super().__init__("unix:///nonexistent.sock")
        self.messages = messages
        self.calls: list[tuple] = []

    def request(self, method, path, **kwargs):
        self.calls.append((method, path, kwargs))
        body = kwargs.get("data")
        if body is not None and not isinstance(body, bytes):
            kwargs["uploaded"] = b"".join(body)
        return types.SimpleNamespace(
            iter_json=lambda: iter(self.messages), json=lambda: {}, read=lambda: b"", headers={}
        )


def test_api_build_query_and_headers():
    client = RecordingClient([])
    EngineAPI(client).build(
        iter([b"tar"]),
        tags=["a:1", "b"],
        dockerfile="Dockerfile.x",
        quiet=False,
        rm=True,
        build_args={"A": "1", "N": None},
        labels={"k": "v"},
        cache_from=["a:0"],
        network_mode="host",
        extra_hosts=["h:1.2.3.4"],
        platform="linux/amd64",
        target="t",
        secrets={"s": b"\x00v"},
        freight_steps=True,
        registry_config={"reg": {"username": "u"}},
    )
    method, path, kwargs = client.calls[0]
    assert (method, path) == ("POST", "/build")
    query = parse_qs(urlsplit(client.url(path, kwargs["params"])).query)
    assert query["t"] == ["a:1", "b"]
    assert query["dockerfile"] == ["Dockerfile.x"]
    assert query["rm"] == ["1"] and query["version"] == ["1"] and query["freightsteps"] == ["1"]
    assert json.loads(query["buildargs"][0]) == {"A": "1", "N": None}
    assert json.loads(query["labels"][0]) == {"k": "v"}
    assert json.loads(query["cachefrom"][0]) == ["a:0"]
    assert "secrets" not in query  # a header: no URL log may hold a secret
    assert query["networkmode"] == ["host"] and query["extrahosts"] == ["h:1.2.3.4"]
    assert query["platform"] == ["linux/amd64"] and query["target"] == ["t"]
    for absent in ("q", "nocache", "pull", "forcerm", "remote"):
        assert absent not in query
    headers = kwargs["headers"]
    assert headers["Content-Type"] == "application/x-tar"
    secrets = json.loads(base64.b64decode(headers["X-Freight-Build-Secrets"]))
    assert secrets == {"s": base64.b64encode(b"\x00v").decode()}
    assert json.loads(base64.urlsafe_b64decode(headers["X-Registry-Config"])) == {
        "reg": {"username": "u"}
    }
    assert kwargs["uploaded"] == b"tar"


def test_api_build_prune_query():
    client = RecordingClient([])
    EngineAPI(client).build_prune(all=True, filters={"until": ["24h"]}, keep_storage=1024)
    _, path, kwargs = client.calls[0]
    query = parse_qs(urlsplit(client.url(path, kwargs["params"])).query)
    assert path == "/build/prune" and query["all"] == ["1"] and query["keep-storage"] == ["1024"]
    assert json.loads(query["filters"][0]) == {"until": {"24h": True}}


def test_chunked_upload_of_an_iterator_and_a_file():
    cases = [
        (iter([b"ab", b"", b"cde"]), b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),  # b"" is skipped
        (io.BytesIO(b"abcde"), b"5\r\nabcde\r\n0\r\n\r\n"),
    ]
    for body, expected in cases:
        left, right = socket.socketpair()
        with left, right:
            _send_chunked(left, body)
            left.shutdown(socket.SHUT_WR)
            assert b"".join(iter(lambda s=right: s.recv(4096), b"")) == expected


# ------------------------------------------------------------------ the views


def render_plain(messages: list[dict], tags: list[str] | None = None) -> tuple[str, str]:
    out = io.StringIO()
    view = b.PlainView(out, tags or ["app:latest"])
    image_id = b.drive(messages, view)
    return out.getvalue(), image_id


def test_plain_output_prefixes_each_step():
    text, image_id = render_plain(MESSAGES)
    assert image_id == IMAGE
    assert text == (
        "#1 [stage-0 1/3] FROM busybox\n"
        "#1  ---> abc123def456\n"
        "#1 DONE 0.0s\n"
        "#2 [stage-0 2/3] RUN echo hi\n"
        "#2  ---> Running in 0123456789ab\n"
        "#2 hi\n"
        "#2 there\n"
        "#2 Removing intermediate container 0123456789ab\n"
        "#2  ---> 111111111111\n"
        "#2 DONE 0.3s\n"
        '#3 [stage-0 3/3] CMD ["sh"]\n'
        "#3  ---> Using cache\n"
        "#3  ---> 222222222222\n"
        "#3 CACHED\n"
        "Successfully built 222222222222\n"
        "Successfully tagged app:latest\n"
    )


def test_plain_without_step_messages_is_the_classic_stream():
    classic = [m for m in MESSAGES if "freight" not in (m.get("aux") or {})]
    text, _ = render_plain(classic)
    assert text == "".join(m["stream"] for m in classic if "stream" in m)


def test_plain_joins_partial_lines_and_names_stages():
    messages = [
        step(1, "running", "RUN printf", stage="builder"),
        stream("no newline"),
        stream(" yet\nlast"),
        step(1, "done", "RUN printf", 1.25, stage="builder"),
        {"aux": {"ID": IMAGE}},
    ]
    text, _ = render_plain(messages, tags=["x"])
    assert text.splitlines() == [
        "#1 [builder 1/3] RUN printf",
        "#1 no newline yet",
        "#1 last",
        "#1 DONE 1.2s",
        "Successfully built 222222222222",  # the daemon sent none: the CLI says it
        "Successfully tagged x",
    ]


FAILING = [
    stream("Step 1/3 : FROM busybox\n"),
    step(1, "running", "FROM busybox"),
    step(1, "done", "FROM busybox"),
    stream("Step 2/3 : RUN false\n"),
    step(2, "running", "RUN false"),
    stream("oops\n"),
    step(2, "error", "RUN false", 0.2),
    {
        "errorDetail": {"message": "The command '/bin/sh -c false' returned a non-zero code: 1"},
        "error": "The command '/bin/sh -c false' returned a non-zero code: 1",
    },
]


def test_plain_error_exits_1():
    out = io.StringIO()
    with pytest.raises(CliError) as info:
        b.drive(FAILING, b.PlainView(out, ["app"]))
    assert info.value.status == 1
    assert "returned a non-zero code: 1" in info.value.message
    lines = out.getvalue().splitlines()
    assert lines[-2:] == [
        "#2 oops",
        "#2 ERROR: The command '/bin/sh -c false' returned a non-zero code: 1",
    ]
    assert "Successfully" not in out.getvalue()


def test_stream_without_an_id_is_an_error():
    with pytest.raises(CliError, match="without an image ID"):
        b.drive([stream("hello\n")], b.PlainView(io.StringIO(), []))


def test_quiet_prints_only_the_id():
    out = io.StringIO()
    assert b.drive(MESSAGES, b.QuietView(out, ["app"])) == IMAGE
    assert out.getvalue() == IMAGE + "\n"


def row(text: str, seconds: str, columns: int = 60) -> str:
    """A step line of a frame: the time flush right, one column short of the width."""
    return text.ljust(columns - 2 - len(seconds)) + " " + seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def live(clock: Clock) -> tuple[b.LiveView, io.StringIO]:
    out = io.StringIO()
    return b.LiveView(out, ["app:latest"], clock=clock, size=(60, 20)), out


def test_live_frames_show_states_times_and_output_tail():
    clock = Clock()
    view, _ = live(clock)
    for message in MESSAGES[:8]:  # up to RUN's output
        view.feed(message)
    clock.now += 1.5
    assert view.frame(60) == [
        "[+] Building 1.5s (1/3)",
        row(" => [stage-0 1/3] FROM busybox", "0.0s"),
        row(" => [stage-0 2/3] RUN echo hi", "1.5s"),
        " => => # hi",
        " => => # there",
    ]
    for message in MESSAGES[8:]:
        view.feed(message)
    final = view.frame(60, final=True)
    assert final == [
        "[+] Building 1.5s (3/3) FINISHED",
        row(" => [stage-0 1/3] FROM busybox", "0.0s"),
        row(" => [stage-0 2/3] RUN echo hi", "0.3s"),
        row(' => CACHED [stage-0 3/3] CMD ["sh"]', "0.0s"),
    ]
    assert all(len(line) < 60 for line in final)
    assert view.trailer == ["Successfully built 222222222222", "Successfully tagged app:latest"]


def test_live_output_tail_is_the_last_lines_and_long_lines_are_cut():
    clock = Clock()
    view, _ = live(clock)
    view.feed(step(1, "running", "RUN " + "x" * 100))
    view.feed(stream("".join(f"line {i}\n" for i in range(10)) + "progress 10%\rprogress 99%\r\n"))
    frame = view.frame(40)
    assert frame[1].endswith(" 0.0s") and "…" in frame[1] and len(frame[1]) == 39
    assert [line.removeprefix(" => => # ") for line in frame[2:]] == [
        "line 5", "line 6", "line 7", "line 8", "line 9", "progress 99%",
    ]  # fmt: skip


def test_live_drawing_redraws_in_place_and_keeps_scrolling_text_above():
    clock = Clock()
    view, out = live(clock)
    view.feed(stream("[Warning] something\n"))  # before any step: scrolls above the frame
    view.start()
    assert out.getvalue() == "\x1b[?25l\r\x1b[J[Warning] something\n"  # no frame yet
    view.feed(step(1, "running", "FROM busybox"))
    clock.now += 0.5
    view.tick()
    clock.now += 0.05
    view.tick()  # too soon for another frame
    clock.now += 0.25
    view.tick()
    frames = out.getvalue().split("\r\x1b[J")
    assert len(frames) == 4 and frames[2].endswith("\x1b[2A")  # back up over the 2-line frame
    assert (
        frames[3]
        == "[+] Building 0.8s (0/3)\n" + row(" => [stage-0 1/3] FROM busybox", "0.8s") + "\n"
    )


def test_live_frame_fits_the_terminal_height():
    clock = Clock()
    view, out = live(clock)
    view.size = (60, 6)
    for n in range(1, 9):
        view.feed(step(n, "running", f"RUN step{n}"))
        view.feed(step(n, "done", f"RUN step{n}", 0.1))
    view.draw()
    frame = out.getvalue().split("\r\x1b[J")[-1].splitlines()
    assert len(frame) == 5 and frame[0].startswith("[+] Building")
    assert frame[-1].startswith(" => [stage-0 8/3] RUN step8")
    view.feed({"aux": {"ID": IMAGE}})
    view.finish()  # the final frame is whole: nothing redraws it afterwards
    assert out.getvalue().split("\r\x1b[J")[-1].count(" => [stage-0") == 8


def test_live_frame_in_a_small_terminal_keeps_the_running_step():
    clock = Clock()
    view, _ = live(clock)
    for n in range(1, 4):
        view.feed(step(n, "running", f"RUN s{n}"))
        view.feed(step(n, "done", f"RUN s{n}", 0.1))
    view.feed(step(4, "running", "RUN long"))
    view.feed(stream("".join(f"l{i}\n" for i in range(9))))
    frame = view.frame(60, height=5)
    assert frame[1:] == [row(" => [stage-0 4/3] RUN long", "0.0s")] + [
        f" => => # l{i}" for i in (6, 7, 8)
    ]
    assert len(view.frame(60, height=20)) == 1 + 4 + LOG_TAIL


def test_live_error_keeps_the_failed_step_output_in_the_final_frame():
    clock = Clock()
    view, out = live(clock)
    view.start()
    with pytest.raises(CliError) as info:
        for message in FAILING:
            view.feed(message)
        view.finish()
    assert info.value.status == 1
    text = out.getvalue()
    final = text[text.rindex("[+] Building") :]
    assert "FINISHED" not in final
    assert " => ERROR [stage-0 2/3] RUN false" in final and " => => # oops" in final
    assert "Successfully" not in text and text.endswith("\x1b[?25h")


def test_live_counts_the_uploaded_context():
    clock = Clock()
    view, _ = live(clock)
    assert b"".join(view.sending(io.BytesIO(b"x" * 3000))) == b"x" * 3000
    assert " => [internal] load build context: 3kB" in view.frame(60)[1]


# ------------------------------------------------------------------ the command


class FakeSession:
    def __init__(self, messages: list[dict]) -> None:
        self.client = RecordingClient(messages)
        self.api = EngineAPI(self.client)
        self.lines: list[str] = []

    def out(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def fake_context(monkeypatch):
    """cli.buildcontext as its interface says, without packing anything."""
    seen: dict = {}

    def prepare(source, dockerfile, stdin, local=False):
        seen.update(source=source, dockerfile=dockerfile)
        return types.SimpleNamespace(
            body=iter([b"context-tar"]),
            dockerfile=dockerfile or "Dockerfile",
            remote=None,
            cleanup=lambda: seen.setdefault("cleaned", True),
            local_path=None,
            local_id="",
            upload=None,
        )

    module = types.ModuleType("freight.cli.buildcontext")
    module.prepare = prepare  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "freight.cli.buildcontext", module)
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    return seen


def test_build_main_writes_the_iidfile_and_cleans_up(tmp_path, fake_context, capsys):
    session = FakeSession(MESSAGES)
    iid = tmp_path / "iid"
    iid.write_text("stale")
    status = b.build_main(
        session, ["-q", "-t", "app", "-f", "Dockerfile.dev", "--iidfile", str(iid), "ctx"]
    )
    assert status == 0
    assert iid.read_text() == IMAGE
    assert capsys.readouterr().out == IMAGE + "\n"
    assert fake_context == {"source": "ctx", "dockerfile": "Dockerfile.dev", "cleaned": True}
    _, _, kwargs = session.client.calls[0]
    assert kwargs["params"]["dockerfile"] == "Dockerfile.dev" and kwargs["params"]["q"] is True
    assert kwargs["uploaded"] == b"context-tar"
    assert "X-Registry-Config" not in kwargs["headers"]


def test_build_main_failure_leaves_no_iidfile(tmp_path, fake_context, capsys):
    iid = tmp_path / "iid"
    iid.write_text("stale")
    with pytest.raises(CliError) as info:
        b.build_main(FakeSession(FAILING), ["--progress=plain", "--iidfile", str(iid), "."])
    assert info.value.status == 1 and not iid.exists()
    assert fake_context["cleaned"] is True
    assert "#2 oops" in capsys.readouterr().out


# ------------------------------------------------------------------ builder prune


def test_prune_report_text():
    assert prune_report({"CachesDeleted": ["a", "b"], "SpaceReclaimed": 1_234_567}) == (
        "Deleted build cache objects:\na\nb\n\nTotal reclaimed space: 1.23MB\n"
    )
    assert prune_report({"CachesDeleted": None, "SpaceReclaimed": 0}) == (
        "Total reclaimed space: 0B\n"
    )


def test_prune_asks_first(monkeypatch, capsys):
    session = FakeSession([])
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert prune_main(session, ["-a"]) == 0
    assert "WARNING! This will remove all build cache." in capsys.readouterr().out
    assert session.client.calls == []
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert prune_main(session, ["--filter", "until=24h", "--keep-storage", "1k"]) == 0
    assert "all dangling build cache" in capsys.readouterr().out
    params = session.client.calls[0][2]["params"]
    assert params["keep-storage"] == 1024 and params["all"] is None
    assert session.lines == ["\n", "Total reclaimed space: 0B\n"]  # "\n" after the "no"


# ------------------------------------------------------------------ over a socket


@pytest.fixture
def fake_daemon(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
    try:
        from fakedaemon import FakeDaemon
    finally:
        sys.path.pop(0)
    daemon = FakeDaemon(str(tmp_path / "d.sock"))
    yield daemon
    daemon.close()


def _stream_reply(messages: list[dict]):
    def handler(req, sock) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        sock.sendall(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for message in messages:
            data = json.dumps(message).encode() + b"\r\n"
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        sock.sendall(b"0\r\n\r\n")

    return handler


def test_build_over_a_socket(fake_daemon, fake_context, capsys):
    fake_daemon.route("POST", "/build", _stream_reply(MESSAGES))
    status = main(["-H", fake_daemon.host, "build", "--progress=plain", "-t", "app:latest", "ctx"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    head, rest = captured.out.split("\n", 3)[:3], captured.out.split("\n", 3)[3]
    assert head[:2] == ["#0 [internal] load build context", "#0 transferring context: 11B done"]
    assert head[2].startswith("#0 DONE ") and head[2].endswith("s")
    assert rest == render_plain(MESSAGES)[0]
    request = fake_daemon.requests[0]
    assert request.body == b"context-tar"  # sent chunked, decoded by h11
    assert request.headers["content-type"] == "application/x-tar"
    query = parse_qs(request.query)
    assert query["t"] == ["app:latest"] and query["freightsteps"] == ["1"]


def test_build_http_error_exits_1(fake_daemon, fake_context, capsys):
    from fakedaemon import respond_json

    message = "dockerfile parse error on line 1: unknown instruction: FORM"
    fake_daemon.route("POST", "/build", lambda req, s: respond_json(s, 400, {"message": message}))
    assert main(["-H", fake_daemon.host, "build", "-q", "."]) == 1
    assert capsys.readouterr().err == f"freight: Error response from daemon: {message}\n"
    assert fake_context["cleaned"] is True
