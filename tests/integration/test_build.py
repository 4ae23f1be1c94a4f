"""End to end: Dockerfile builds through POST /build, driven by the real docker CLI
(no buildx plugin here, so `docker build` speaks the legacy builder's API) and
by the freight CLI.

Every test builds from busybox (bootstrapped by the session fixture) in a
context directory of its own and removes the images it tagged.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess]


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def fails(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout.decode()
    return (result.stdout + result.stderr).decode(errors="replace")


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """A context directory: make(Dockerfile text, file=content, ...)."""

    def make(dockerfile: str, **files: str | bytes) -> Path:
        root = tmp_path / secrets.token_hex(4)
        root.mkdir()
        (root / "Dockerfile").write_text(dockerfile)
        for name, content in files.items():
            path = root / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return root

    return make


@pytest.fixture
def tags(freightd) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def new() -> str:
        made.append(f"build-test-{secrets.token_hex(4)}:latest")
        return made[-1]

    yield new
    for t in made:
        freightd.docker("rmi", "-f", t)


def docker_build(freightd, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return freightd.docker("build", *args, input=input, timeout=120)


def inspect(freightd, ref: str) -> dict:
    return json.loads(out(freightd.docker("image", "inspect", ref)))[0]


def run(freightd, image: str, *cmd: str) -> str:
    return out(freightd.docker("run", "--rm", image, *cmd))


# instructions -------------------------------------------------------------------------


def test_every_instruction(freightd, project, tags) -> None:
    ctx = project(
        """# syntax=docker/dockerfile:1
FROM busybox AS base
ARG GREETING=hello
ENV APP=/app \\
    MODE=${GREETING}-mode
LABEL org.example.name="demo app" version=1
MAINTAINER someone@example.com
WORKDIR $APP
COPY hello.txt ./
COPY dir/ sub/
ADD archive.tar /unpacked/
RUN echo "$GREETING from $(pwd)" > greeting && mkdir -p /home/app && chown 1234 /home/app \
    && echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd
USER app
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting"]
""",
        **{"hello.txt": "hi\n", "dir__a.txt": "a\n", "archive.tar": _tar({"inside.txt": b"x\n"})},
    )
    tag = tags()
    log = out(docker_build(freightd, "-t", tag, str(ctx)))
    assert "Successfully built" in log and f"Successfully tagged {tag}" in log
    cfg = inspect(freightd, tag)["Config"]
    assert cfg["WorkingDir"] == "/app"
    assert "APP=/app" in cfg["Env"] and "MODE=hello-mode" in cfg["Env"]
    assert cfg["Labels"] == {"org.example.name": "demo app", "version": "1"}
    assert cfg["User"] == "app"
    assert set(cfg["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert set(cfg["Volumes"]) == {"/data"}
    assert cfg["StopSignal"] == "SIGTERM"
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert cfg["Healthcheck"]["Interval"] == 5_000_000_000
    assert cfg["Healthcheck"]["Retries"] == 4
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["OnBuild"] == ["RUN echo triggered"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["cat greeting"]
    assert inspect(freightd, tag)["Author"] == "someone@example.com"
    assert run(freightd, tag) == "hello from /app\n"
    listing = run(freightd, "--entrypoint", "ls", tag, "/app", "/app/sub", "/unpacked")
    assert "hello.txt" in listing and "a.txt" in listing and "inside.txt" in listing
    assert "1234" in run(freightd, "--entrypoint", "stat", tag, "-c", "%u", "/home/app")


def test_onbuild_triggers_run_in_the_child(freightd, project, tags) -> None:
    parent = tags()
    out(
        docker_build(
            freightd, "-t", parent, str(project("FROM busybox\nONBUILD RUN echo hi > /t\n"))
        )
    )
    child = tags()
    log = out(docker_build(freightd, "-t", child, str(project(f"FROM {parent}\nRUN cat /t\n"))))
    assert "Executing 1 build trigger" in log and "hi" in log
    assert inspect(freightd, child)["Config"]["OnBuild"] in (None, [])


def test_build_args_and_unused_warning(freightd, project, tags) -> None:
    ctx = project('ARG BASE=busybox\nFROM $BASE\nARG WHO\nRUN echo "who=$WHO" > /who\n')
    tag = tags()
    log = out(
        docker_build(
            freightd, "--build-arg", "WHO=me", "--build-arg", "NOPE=1", "-t", tag, str(ctx)
        )
    )
    assert "[Warning] One or more build-args [NOPE] were not consumed" in log
    assert run(freightd, tag, "cat", "/who") == "who=me\n"
    # ARG values are not kept in the image's environment
    assert not any(e.startswith("WHO=") for e in inspect(freightd, tag)["Config"]["Env"])


def test_heredocs(freightd, project, tags) -> None:
    ctx = project(
        "FROM busybox\n"
        "RUN <<EOF\necho one > /one\necho two > /two\nEOF\n"
        "COPY <<EOT /etc/motd\nwelcome\nEOT\n"
    )
    tag = tags()
    out(docker_build(freightd, "-t", tag, str(ctx)))
    assert run(freightd, tag, "cat", "/one", "/two", "/etc/motd") == "one\ntwo\nwelcome\n"


# the cache --------------------------------------------------------------------------


def test_cache_reuses_unchanged_steps_and_reruns_after_a_change(freightd, project, tags) -> None:
    ctx = project(
        "FROM busybox\nRUN echo base > /base\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n",
        **{"app.txt": "v1\n"},
    )
    tag = tags()
    out(docker_build(freightd, "-t", tag, str(ctx)))
    first = inspect(freightd, tag)["Id"]
    again = out(docker_build(freightd, "-t", tag, str(ctx)))
    assert again.count("Using cache") == 3
    assert inspect(freightd, tag)["Id"] == first  # an unchanged project: the same image

    (ctx / "app.txt").write_text("v2\n")
    changed = out(docker_build(freightd, "-t", tag, str(ctx)))
    assert changed.count("Using cache") == 1  # the RUN before the COPY only
    assert run(freightd, tag, "cat", "/copy") == "v2\n"
    assert out(docker_build(freightd, "--no-cache", "-t", tag, str(ctx))).count("Using cache") == 0


def test_cache_survives_a_daemon_restart(own_daemon, private_root, daemon_tools, project) -> None:
    d = own_daemon
    out(d.cli("image", "bootstrap", "busybox", timeout=120))
    ctx = project("FROM busybox\nRUN echo once > /once\n")
    out(d.docker("build", "-t", "survivor", str(ctx), timeout=120))
    daemon_tools.stop(d)
    d2 = daemon_tools.start(*private_root)
    try:
        assert "Using cache" in out(d2.docker("build", "-t", "survivor", str(ctx), timeout=120))
        # builder prune -a forgets it
        pruned = out(d2.docker("builder", "prune", "-a", "-f"))
        assert "Total" in pruned
        assert "Using cache" not in out(d2.docker("build", "-t", "survivor", str(ctx), timeout=120))
    finally:
        daemon_tools.stop(d2)


# multi-stage ------------------------------------------------------------------------


def test_multi_stage_target_and_skipped_stages(freightd, project, tags) -> None:
    ctx = project(
        """FROM busybox AS builder
RUN echo built > /artifact
FROM busybox AS broken
RUN exit 7
FROM busybox AS other
RUN echo other > /other
FROM busybox
COPY --from=builder /artifact /artifact
COPY --from=other /other /other
CMD ["cat", "/artifact", "/other"]
"""
    )
    tag = tags()
    log = out(docker_build(freightd, "-t", tag, str(ctx)))
    assert "exit 7" not in log  # a stage nothing needs is not built
    assert run(freightd, tag) == "built\nother\n"
    target = tags()
    out(docker_build(freightd, "--target", "builder", "-t", target, str(ctx)))
    assert run(freightd, target, "cat", "/artifact") == "built\n"
    missing = fails(docker_build(freightd, "--target", "nope", str(ctx)))
    assert "failed to reach build target nope" in missing


# contexts ---------------------------------------------------------------------------


def test_dockerignore_with_exceptions(freightd, project, tags) -> None:
    ctx = project(
        "FROM busybox\nCOPY . /ctx\n",
        **{
            ".dockerignore": "secret*\nlogs/**\n!logs/keep.log\n",
            "secret.txt": "s",
            "app.py": "print()",
            "logs__a.log": "a",
            "logs__keep.log": "k",
        },
    )
    tag = tags()
    out(docker_build(freightd, "-t", tag, str(ctx)))
    files = run(freightd, tag, "find", "/ctx", "-type", "f").split()
    assert "/ctx/app.py" in files and "/ctx/logs/keep.log" in files
    assert "/ctx/secret.txt" not in files and "/ctx/logs/a.log" not in files


def test_dockerfile_from_stdin(freightd, tags) -> None:
    tag = tags()
    out(docker_build(freightd, "-t", tag, "-", input=b"FROM busybox\nRUN echo piped > /p\n"))
    assert run(freightd, tag, "cat", "/p") == "piped\n"


def test_remote_dockerfile_url(freightd, tmp_path: Path, tags) -> None:
    import docker

    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo remote > /r\n")
    with _serve(tmp_path) as base:
        client = docker.DockerClient(base_url=freightd.host.replace("unix://", "unix://"))
        try:
            tag = tags()
            client.images.build(path=f"{base}/Dockerfile", tag=tag)
        finally:
            client.close()
    assert run(freightd, tag, "cat", "/r") == "remote\n"


def test_git_context_with_ref_and_subdir(freightd, tmp_path: Path, tags) -> None:
    import docker

    repo = tmp_path / "repo.git"
    work = tmp_path / "work"
    (work / "app").mkdir(parents=True)
    (work / "app" / "Dockerfile").write_text("FROM busybox\nCOPY msg /msg\n")
    (work / "app" / "msg").write_text("from git\n")
    git = ["git", "-c", "user.email=t@e", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "c"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "update-server-info"], check=True)
    with _serve(tmp_path) as base:
        client = docker.DockerClient(base_url=freightd.host)
        try:
            tag = tags()
            client.images.build(path=f"{base}/repo.git#main:app", tag=tag)
        finally:
            client.close()
    assert run(freightd, tag, "cat", "/msg") == "from git\n"


# bad input --------------------------------------------------------------------------


def test_unknown_instruction_names_the_line(freightd, project) -> None:
    message = fails(docker_build(freightd, str(project("FROM busybox\nFOO bar\n"))))
    assert "line 2" in message and "unknown instruction: FOO" in message


def test_copy_from_outside_the_context_is_refused(freightd, project, tags, tmp_path) -> None:
    (tmp_path / "outside.txt").write_text("host secret")
    ctx = project("FROM busybox\nCOPY ../outside.txt /x\n")
    tag = tags()
    message = fails(docker_build(freightd, "-t", tag, str(ctx)))
    assert "line 2" in message
    assert freightd.docker("image", "inspect", tag).returncode != 0  # nothing tagged
    link = project("FROM busybox\nCOPY link /x\n")
    (link / "link").symlink_to(tmp_path / "outside.txt")
    result = docker_build(freightd, "-t", tag, str(link))
    if result.returncode == 0:  # a symlink out resolves inside the context: not found
        assert "host secret" not in run(freightd, tag, "cat", "/x")


def test_failing_run_shows_output_and_tags_nothing(freightd, project, tags) -> None:
    tag = tags()
    ctx = project("FROM busybox\nRUN echo about to fail && exit 3\n")
    message = fails(docker_build(freightd, "-t", tag, str(ctx)))
    assert "about to fail" in message
    assert "returned a non-zero code: 3" in message
    assert freightd.docker("image", "inspect", tag).returncode != 0


def test_reproducible_with_source_date_epoch(freightd, project, tags) -> None:
    ctx = project("FROM busybox\nCOPY f /f\nRUN echo same > /same\n", f="content\n")
    ids = []
    for _ in range(2):
        tag = tags()
        args = ["--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", tag, str(ctx)]
        out(docker_build(freightd, *args))
        ids.append(inspect(freightd, tag)["Id"])
    assert ids[0] == ids[1]


# helpers ----------------------------------------------------------------------------


def _tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _serve:
    """An HTTP server on 127.0.0.1 for `root` (URL and git contexts)."""

    def __init__(self, root: Path) -> None:
        handler = lambda *a, **k: _Quiet(*a, directory=str(root), **k)  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_freight_cli_build_with_a_secret_and_plain_progress(freightd, project, tags) -> None:
    ctx = project(
        "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen\n",
        tok="s3cret\n",
    )
    tag = tags()
    args = ["build", "--progress=plain", "--secret", f"id=tok,src={ctx / 'tok'}", "-t", tag]
    log = out(freightd.cli(*args, str(ctx), timeout=120))
    assert "[stage-0 2/2] RUN" in log and f"Successfully tagged {tag}" in log
    assert run(freightd, tag, "cat", "/seen") == "s3cret\n"
    # the secret is not in the image's layers
    assert "s3cret" not in run(freightd, tag, "sh", "-c", "ls /run/secrets 2>/dev/null; true")


def test_freight_cli_reads_a_local_folder_in_place(freightd, project, tags, tmp_path) -> None:
    """The freight CLI names a local folder instead of sending it: the daemon
    builds from an overlay of it, applies .dockerignore itself, and leaves the
    user's files as they were; a Dockerfile from outside travels alone."""
    ctx = project(
        "FROM busybox\nCOPY . /ctx\n",
        **{".dockerignore": "secret*\n", "secret.txt": "s", "app.py": "print()"},
    )
    tag = tags()
    out(freightd.cli("build", "-q", "-t", tag, str(ctx), timeout=120))
    files = run(freightd, tag, "find", "/ctx", "-type", "f").split()
    assert "/ctx/app.py" in files and "/ctx/secret.txt" not in files
    assert sorted(p.name for p in ctx.iterdir()) == [
        ".dockerignore", "Dockerfile", "app.py", "secret.txt"
    ]  # fmt: skip
    outside = tmp_path / "Elsewhere.Dockerfile"
    outside.write_text("FROM busybox\nCOPY app.py /app.py\n")
    other = tags()
    out(freightd.cli("build", "-q", "-f", str(outside), "-t", other, str(ctx), timeout=120))
    assert run(freightd, other, "cat", "/app.py") == "print()"
    work = freightd.data_root / "tmp" / "build"
    assert not list(work.glob("ctx-*")), "a build left its work directory"
    assert str(work) not in Path("/proc/self/mountinfo").read_text()


def test_a_folder_the_daemon_sees_differently_is_refused(freightd, project) -> None:
    """A client in another mount namespace names a folder that, for the daemon,
    is another one (other device and inode): refused, so the CLI sends a tar."""
    from freight.client.api import EngineAPI  # noqa: PLC0415 - only this test needs it
    from freight.client.http import ApiError, EngineClient  # noqa: PLC0415

    ctx = project("FROM busybox\n")
    api = EngineAPI(EngineClient(freightd.host))
    assert api.reads_local_folders()
    with pytest.raises(ApiError, match="not visible to freightd"):
        list(api.build(None, local_context=(str(ctx), "1:1"), quiet=True))
    assert not list((freightd.data_root / "tmp" / "build").glob("ctx-*"))


def test_an_image_from_scratch_names_the_host_platform(freightd, project, tags) -> None:
    ctx = project("FROM scratch\nCOPY Dockerfile /\n")
    tag = tags()
    out(docker_build(freightd, "-q", "-t", tag, str(ctx)))
    image = inspect(freightd, tag)
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assert (image["Os"], image["Architecture"]) == ("linux", machine)
