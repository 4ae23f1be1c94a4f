"""Builds: layers committed in place, stages in parallel, --cache-from, ADD URL revalidation.

Runs the real docker CLI (legacy builder API) and the freight CLI against the
session freightd; busybox comes from the host (no internet).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


@pytest.fixture
def ctx_dir(tmp_path: Path) -> Callable[..., Path]:
    def make(dockerfile: str, **files: str) -> Path:
        root = tmp_path / secrets.token_hex(4)
        root.mkdir()
        (root / "Dockerfile").write_text(dockerfile)
        for name, content in files.items():
            (root / name).write_text(content)
        return root

    return make


@pytest.fixture
def new_tag(freightd) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def new() -> str:
        made.append(f"dag-test-{secrets.token_hex(4)}:latest")
        return made[-1]

    yield new
    for t in made:
        freightd.docker("rmi", "-f", t)


def build(freightd, *args: str) -> str:
    return out(freightd.docker("build", *args, timeout=120))


def inspect(freightd, ref: str) -> dict:
    return json.loads(out(freightd.docker("image", "inspect", ref)))[0]


# layers committed in place ------------------------------------------------------------


def _tar_entries(data: bytes) -> dict[str, tuple[int, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.rstrip("/"): (m.mode, int(m.mtime), m.size) for m in tar.getmembers()}


def _dir_entries(root: Path) -> dict[str, tuple[int, int, int]]:
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlay whiteout
                parent, _, base = rel.rpartition("/")
                entries[f"{parent}/.wh.{base}" if parent else f".wh.{base}"] = (
                    0,
                    int(st.st_mtime),
                    0,
                )
                continue
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            entries[rel] = (stat.S_IMODE(st.st_mode), int(st.st_mtime), size)
    return entries


def _saved_layers(freightd, tag: str) -> list[bytes]:
    saved = freightd.docker("save", tag, timeout=60)
    assert saved.returncode == 0, saved.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(saved.stdout)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return [tar.extractfile(p).read() for p in manifest[0]["Layers"]]  # type: ignore[union-attr]


def test_step_layers_committed_in_place_match_their_tars(freightd, ctx_dir, new_tag) -> None:
    """The next step sees exactly what the layer tar holds: SOURCE_DATE_EPOCH
    mtimes, no mount-point stubs, whiteouts; and the layer dir is the tar's."""
    ctx = ctx_dir(
        "FROM busybox\nCOPY f /src/f\n"
        "RUN stat -c %Y /src/f > /mtime && rm /bin/true && mkdir /made\n",
        f="content\n",
    )
    tag = new_tag()
    build(freightd, "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", tag, str(ctx))
    assert out(freightd.docker("run", "--rm", tag, "cat", "/mtime")) == "1700000000\n"
    upper = Path(inspect(freightd, tag)["GraphDriver"]["Data"]["UpperDir"])
    assert not (upper.parent / "work").exists()  # a committed snapshot, not an upper dir
    run_tar, copy_tar = _saved_layers(freightd, tag)[-1], _saved_layers(freightd, tag)[-2]
    on_disk = _dir_entries(upper)
    assert on_disk == _tar_entries(run_tar)
    assert "bin/.wh.true" in on_disk and "etc/hosts" not in on_disk
    assert all(mtime <= 1700000000 for _, mtime, _ in on_disk.values())
    assert "src/f" in _tar_entries(copy_tar)


# stages in parallel -------------------------------------------------------------------

PARALLEL = """FROM busybox AS one
RUN sleep 3 && echo one > /one
FROM busybox AS two
RUN sleep 3 && echo two > /two
FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
RUN cat /one /two > /both
"""


def test_independent_stages_run_at_the_same_time(freightd, ctx_dir, new_tag) -> None:
    ctx = ctx_dir(PARALLEL)
    tag = new_tag()
    started = time.monotonic()
    log = build(freightd, "--no-cache", "-t", tag, str(ctx))
    elapsed = time.monotonic() - started
    # One after the other: 6 s of sleep alone. Together: 3 s plus the build's own time.
    assert elapsed < 5.9, f"two 3 s stages took {elapsed:.1f} s: not in parallel"
    assert out(freightd.docker("run", "--rm", tag, "cat", "/both")) == "one\ntwo\n"
    # the legacy stream still reads one stage after another
    steps = [line.split(" :")[0] for line in log.splitlines() if line.startswith("Step ")]
    assert steps == [f"Step {n}/8" for n in range(1, 9)]
    one = log.index("Step 2/8")
    assert log.index("Step 3/8") > log.index(" ---> ", one)


def test_a_failing_stage_stops_the_others(freightd, ctx_dir, new_tag) -> None:
    ctx = ctx_dir(
        "FROM busybox AS slow\nRUN sleep 30\n"
        "FROM busybox AS bad\nRUN echo broken && exit 4\n"
        "FROM busybox\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n"
    )
    tag = new_tag()
    started = time.monotonic()
    result = freightd.docker("build", "--no-cache", "-t", tag, str(ctx), timeout=60)
    assert result.returncode != 0
    assert time.monotonic() - started < 20  # the sleeping stage was cancelled
    text = (result.stdout + result.stderr).decode()
    assert "broken" in text and "returned a non-zero code: 4" in text
    assert freightd.docker("image", "inspect", tag).returncode != 0
    leftover = out(freightd.docker("ps", "-aq", "--filter", "status=running"))
    assert leftover.strip() == "" or "sleep 30" not in out(freightd.docker("ps", "--no-trunc"))


# --cache-from -------------------------------------------------------------------------


def test_cache_from_an_image_built_elsewhere(freightd, ctx_dir, new_tag) -> None:
    """An image saved, the local cache pruned, the image loaded back (no parent
    chain, no cache entries): --cache-from reuses its steps by history."""
    dockerfile = (
        'FROM busybox\nENV A=1\nCOPY f /f\nRUN echo built > /built\nCMD ["cat", "/built"]\n'
    )
    ctx = ctx_dir(dockerfile, f="v1\n")
    source = new_tag()
    build(freightd, "-t", source, str(ctx))
    source_id = inspect(freightd, source)["Id"]
    saved = freightd.docker("save", source, timeout=60)
    assert saved.returncode == 0, saved.stderr.decode()
    out(freightd.docker("rmi", source))
    out(freightd.docker("builder", "prune", "-a", "-f"))
    out(freightd.docker("load", input=saved.stdout, timeout=60))

    again = new_tag()
    log = build(freightd, "--cache-from", source, "-t", again, str(ctx))
    assert log.count("Using cache") == 4, log
    assert inspect(freightd, again)["Id"] == source_id

    out(freightd.docker("builder", "prune", "-a", "-f"))
    (ctx / "f").write_text("v2\n")
    changed = new_tag()
    log = build(freightd, "--cache-from", source, "-t", changed, str(ctx))
    assert log.count("Using cache") == 1, log  # ENV only: the COPY differs, and what follows
    assert out(freightd.docker("run", "--rm", changed, "cat", "/f")) == "v2\n"
    # without --cache-from nothing of the loaded image is used
    out(freightd.docker("builder", "prune", "-a", "-f"))
    (ctx / "f").write_text("v1\n")
    assert "Using cache" not in build(freightd, "-t", new_tag(), str(ctx))


# ADD of a URL: revalidated, not downloaded again --------------------------------------


class _Origin:
    """An HTTP server on 127.0.0.1 with one file, ETag and If-None-Match; it counts
    full answers and 304s."""

    def __init__(self) -> None:
        import hashlib
        import http.server
        import threading

        self.body = b"v1\n"
        self.full = self.not_modified = 0
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = '"' + hashlib.sha256(origin.body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    origin.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                origin.full += 1
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(origin.body)))
                self.end_headers()
                self.wfile.write(origin.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/file.txt"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_add_url_is_revalidated_on_a_cached_rebuild(freightd, ctx_dir, new_tag) -> None:
    origin = _Origin()
    try:
        ctx = ctx_dir(f"FROM busybox\nADD {origin.url} /file.txt\nRUN cat /file.txt > /seen\n")
        tag = new_tag()
        build(freightd, "-t", tag, str(ctx))
        downloads = origin.full
        assert downloads >= 1

        log = build(freightd, "-t", tag, str(ctx))
        assert log.count("Using cache") == 2, log
        assert origin.full == downloads and origin.not_modified == 1  # asked, not fetched

        origin.body = b"v2\n"
        log = build(freightd, "-t", tag, str(ctx))
        assert log.count("Using cache") == 0, log
        assert out(freightd.docker("run", "--rm", tag, "cat", "/seen")) == "v2\n"
    finally:
        origin.close()


# .wh.* files in the context -------------------------------------------------------------


@pytest.mark.parametrize("client", ["docker", "freight"])
def test_context_files_named_like_whiteouts_are_copied(freightd, ctx_dir, new_tag, client) -> None:
    """A context is no layer: `.wh.*` files are files (docker's untar keeps them)."""
    ctx = ctx_dir("FROM busybox\nCOPY . /ctx\nRUN ls -a /ctx > /list\n")
    (ctx / ".wh.keep").write_text("kept\n")
    (ctx / "sub").mkdir()
    (ctx / "sub" / ".wh.inner").write_text("inner\n")
    tag = new_tag()
    runner = freightd.docker if client == "docker" else freightd.cli
    out(runner("build", "-t", tag, str(ctx), timeout=120))
    assert ".wh.keep" in out(freightd.docker("run", "--rm", tag, "cat", "/list")).split()
    shown = out(freightd.docker("run", "--rm", tag, "cat", "/ctx/.wh.keep", "/ctx/sub/.wh.inner"))
    assert shown == "kept\ninner\n"


def test_kept_step_containers_keep_their_filesystem(freightd, ctx_dir, new_tag) -> None:
    """--rm=false: the step's layer is a copy, the container keeps its snapshot."""
    ctx = ctx_dir("FROM busybox\nRUN echo kept > /kept\n")
    tag = new_tag()
    log = build(freightd, "--rm=false", "--no-cache", "-t", tag, str(ctx))
    cid = log.split("Running in ")[1].split()[0]
    try:
        assert "A /kept" in out(freightd.docker("diff", cid)).splitlines()
        assert out(freightd.docker("run", "--rm", tag, "cat", "/kept")) == "kept\n"
    finally:
        freightd.docker("rm", "-f", cid)


def test_freight_cli_shows_parallel_stages_as_they_run(freightd, ctx_dir, new_tag) -> None:
    """freight's views get each output line's step: both stages stream at once."""
    ctx = ctx_dir(PARALLEL.replace("echo one > /one", "echo one-out && echo one > /one"))
    tag = new_tag()
    started = time.monotonic()
    log = out(
        freightd.cli("build", "--progress=plain", "--no-cache", "-t", tag, str(ctx), timeout=120)
    )
    assert time.monotonic() - started < 5.9  # not one after the other (6 s of sleep)
    lines = log.splitlines()
    assert "#2 one-out" in lines, log
    # the second stage's RUN began before the first one's ended
    done_one = next(i for i, line in enumerate(lines) if line.startswith("#2 DONE"))
    assert lines.index("#4 [two 4/8] RUN sleep 3 && echo two > /two") < done_one, log
    assert out(freightd.docker("run", "--rm", tag, "cat", "/both")) == "one\ntwo\n"


def test_a_build_whose_client_goes_away_stops_every_stage(freightd, ctx_dir, new_tag) -> None:
    ctx = ctx_dir(
        "FROM busybox AS a\nRUN sleep 30\nFROM busybox AS b\nRUN sleep 31\n"
        "FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"
    )
    tag = new_tag()
    client = subprocess.Popen(
        ["docker", "-H", freightd.host, "build", "--no-cache", "-t", tag, str(ctx)],
        env=freightd.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def sleepers(*flags: str) -> list[str]:
        listing = out(freightd.docker("ps", *flags, "--no-trunc", "--format", "{{.Command}}"))
        return [line for line in listing.splitlines() if "sleep 3" in line]

    try:
        deadline = time.monotonic() + 20
        while len(sleepers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(sleepers()) == 2  # both stages' RUNs at once
    finally:
        client.kill()
        client.wait()
    deadline = time.monotonic() + 15
    while sleepers("-a") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sleepers("-a") == []  # stopped and removed
    assert freightd.docker("image", "inspect", tag).returncode != 0
