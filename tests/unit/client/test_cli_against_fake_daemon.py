"""The CLI end to end against a fake daemon: run's call order, exit codes, ps output."""

from __future__ import annotations

import threading
import time

from fakedaemon import respond, respond_json

from freight.cli.main import main
from freight.dockerapi.stdcopy import StreamId, encode_frame

CID = "c" * 64


def _run_daemon(daemon, start_status=204, start_message="", exit_code=3):
    started = threading.Event()

    def create(req, s):
        respond_json(s, 201, {"Id": CID, "Warnings": ["something odd"]})

    def attach(req, s):
        s.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        if started.wait(5):
            s.sendall(
                encode_frame(StreamId.STDOUT, b"hi\n") + encode_frame(StreamId.STDERR, b"oops\n")
            )

    def wait(req, s):
        if started.wait(5):
            respond_json(s, 200, {"StatusCode": exit_code})

    def start(req, s):
        if start_status >= 300:
            respond_json(s, start_status, {"message": start_message})
            return
        started.set()
        respond(s, 204)

    daemon.route("POST", "/containers/create", create)
    daemon.route("POST", f"/containers/{CID}/attach", attach)
    daemon.route("POST", f"/containers/{CID}/wait", wait)
    daemon.route("POST", f"/containers/{CID}/start", start)


def test_run_attaches_and_waits_before_start(daemon, capfd):
    _run_daemon(daemon)
    status = main(["-H", daemon.host, "run", "--rm", "-e", "A=1", "busybox", "echo", "-n", "hi"])
    out, err = capfd.readouterr()
    assert status == 3
    assert out == "hi\n"
    assert "oops\n" in err and "WARNING: something odd" in err
    paths = [r.path.rsplit("/", 1)[-1] for r in daemon.requests]
    assert paths.index("start") > paths.index("attach")
    assert paths.index("start") > paths.index("wait")
    body = daemon.requests[0].json()
    assert body["Cmd"] == ["echo", "-n", "hi"]
    assert body["Env"] == ["A=1"]
    assert body["HostConfig"]["AutoRemove"] is True
    wait = next(r for r in daemon.requests if r.path.endswith("/wait"))
    assert wait.query == "condition=removed"


def test_run_start_error_exit_codes(daemon, capfd):
    message = 'failed to create task: exec: "nope": executable file not found in $PATH'
    _run_daemon(daemon, start_status=400, start_message=message)
    assert main(["-H", daemon.host, "run", "busybox", "nope"]) == 127
    err = capfd.readouterr().err
    assert f"freight: Error response from daemon: {message}.\n" in err


def test_run_detached_prints_id(daemon, capfd):
    _run_daemon(daemon)
    assert main(["-H", daemon.host, "run", "-d", "busybox"]) == 0
    assert capfd.readouterr().out == CID + "\n"
    assert not any(r.path.endswith("/attach") for r in daemon.requests)


def test_run_missing_image_tries_pull(daemon, capfd):
    daemon.route(
        "POST",
        "/containers/create",
        lambda r, s: respond_json(s, 404, {"message": "No such image: busybox:latest"}),
    )
    daemon.route(
        "POST",
        "/images/create",
        lambda r, s: respond_json(s, 500, {"message": "pulling is not supported yet"}),
    )
    assert main(["-H", daemon.host, "run", "busybox"]) == 125
    err = capfd.readouterr().err
    assert "Unable to find image 'busybox:latest' locally\n" in err
    assert "freight: Error response from daemon: pulling is not supported yet." in err
    pull = next(r for r in daemon.requests if r.path.endswith("/images/create"))
    assert pull.query == "fromImage=busybox&tag=latest"


def test_ps_table(daemon, capfd):
    now = int(time.time())
    containers = [
        {
            "Id": "a" * 64,
            "Names": ["/web"],
            "Image": "busybox",
            "ImageID": "sha256:" + "b" * 64,
            "Command": "sh -c 'while true; do sleep 1; done'",
            "Created": now - 5,
            "State": "running",
            "Status": "Up 5 seconds",
            "Ports": [],
        }
    ]
    daemon.route("GET", "/containers/json", lambda r, s: respond_json(s, 200, containers))
    assert main(["-H", daemon.host, "ps"]) == 0
    assert capfd.readouterr().out == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n"
        'aaaaaaaaaaaa   busybox   "sh -c \'while true; …"   5 seconds ago   Up 5 seconds             web\n'
    )
    assert main(["-H", daemon.host, "ps", "-q", "--no-trunc"]) == 0
    assert capfd.readouterr().out == "a" * 64 + "\n"


def test_daemon_error_is_1_outside_run_and_create(daemon, capfd):
    daemon.route(
        "POST", "/stop", lambda r, s: respond_json(s, 404, {"message": "No such container: x"})
    )
    assert main(["-H", daemon.host, "stop", "x"]) == 1
    assert capfd.readouterr().err == "freight: Error response from daemon: No such container: x\n"


def test_inspect_format_on_raw_json(daemon, capfd):
    doc = {
        "Id": CID,
        "State": {"Status": "exited"},
        "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v"}},
    }
    daemon.route("GET", "/containers/x/json", lambda r, s: respond_json(s, 200, doc))
    assert (
        main(
            [
                "-H",
                daemon.host,
                "inspect",
                "-f",
                "{{.State.Status}} {{.Config.Env}} {{.Config.Labels}}",
                "x",
            ]
        )
        == 0
    )
    assert capfd.readouterr().out == "exited [A=1 B=2] map[k:v]\n"


def test_run_interactive_forwards_stdin_and_half_closes(daemon):
    import subprocess
    import sys

    started = threading.Event()
    daemon.route("POST", "/containers/create", lambda r, s: respond_json(s, 201, {"Id": CID}))

    def attach(req, s):
        assert "stdin=1" in req.query
        s.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        started.wait(5)
        received = b""
        while chunk := s.recv(4096):  # until the client half-closes
            received += chunk
        s.sendall(encode_frame(StreamId.STDOUT, received.upper()))

    def wait(req, s):
        if started.wait(5):
            time.sleep(0.2)
            respond_json(s, 200, {"StatusCode": 0})

    def start(req, s):
        started.set()
        respond(s, 204)

    daemon.route("POST", f"/containers/{CID}/attach", attach)
    daemon.route("POST", f"/containers/{CID}/wait", wait)
    daemon.route("POST", f"/containers/{CID}/start", start)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "freight.cli.main",
            "-H",
            daemon.host,
            "run",
            "-i",
            "busybox",
            "cat",
        ],
        input=b"hello\n",
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"HELLO\n"
    assert daemon.requests[0].json()["OpenStdin"] is True
