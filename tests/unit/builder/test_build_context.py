"""builder.context: the uploaded tar, remote URLs (a local http server), git (local repos)."""

from __future__ import annotations

import bz2
import gzip
import http.server
import io
import lzma
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from freight import errors
from freight.builder import context as ctx


def make_tar(files: dict[str, bytes | str]) -> bytes:
    """A tar of regular files; a str value makes a directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            if isinstance(data, str):
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


SAMPLE = make_tar({"Dockerfile": b"FROM scratch\n", "src": "", "src/app.py": b"print(1)\n"})

COMPRESSORS = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


# extract_context ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_extract_context_any_compression(tmp_path: Path, kind: str) -> None:
    ctx.extract_context(io.BytesIO(COMPRESSORS[kind](SAMPLE)), tmp_path / "c")
    assert (tmp_path / "c/Dockerfile").read_bytes() == b"FROM scratch\n"
    assert (tmp_path / "c/src/app.py").read_bytes() == b"print(1)\n"


def test_context_entries_named_like_whiteouts_are_files(tmp_path: Path) -> None:
    body = make_tar({"a": b"A", ".wh.a": b"not a whiteout", "d": "", "d/.wh..wh..opq": b"x"})
    ctx.extract_context(io.BytesIO(body), tmp_path / "c")
    assert (tmp_path / "c/a").read_bytes() == b"A"  # nothing was whited out
    assert (tmp_path / "c/.wh.a").read_bytes() == b"not a whiteout"
    assert (tmp_path / "c/d/.wh..wh..opq").read_bytes() == b"x"


def test_an_empty_body_is_an_empty_context(tmp_path: Path) -> None:
    ctx.extract_context(io.BytesIO(b""), tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid build context"):
        ctx.extract_context(io.BytesIO(b"this is not a tar archive" * 40), tmp_path / "c")


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    data = gzip.compress(make_tar({"big": os.urandom(100_000)}))
    with pytest.raises(errors.InvalidArgument, match="invalid build context"):
        ctx.extract_context(io.BytesIO(data[: len(data) // 2]), tmp_path / "c")


def test_names_climbing_out_are_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="escapes"):
        ctx.extract_context(io.BytesIO(make_tar({"../evil": b"x"})), tmp_path / "c")
    assert not (tmp_path / "evil").exists()


def test_symlinks_resolve_inside_the_context(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, str(outside)
        t.addfile(info)
        info = tarfile.TarInfo("link/planted")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    ctx.extract_context(io.BytesIO(tar.getvalue()), tmp_path / "c")
    assert list(outside.iterdir()) == []
    assert (tmp_path / "c" / str(outside).lstrip("/") / "planted").exists()


def test_entry_count_is_bounded(tmp_path: Path) -> None:
    data = make_tar({f"f{i}": b"" for i in range(20)})
    with pytest.raises(errors.InvalidArgument, match="more than 10 entries"):
        ctx.extract_context(io.BytesIO(data), tmp_path / "c", max_entries=10)


def test_size_is_bounded(tmp_path: Path) -> None:
    data = gzip.compress(make_tar({"zeros": bytes(1 << 20)}))
    with pytest.raises(errors.InvalidArgument, match="larger than"):
        ctx.extract_context(io.BytesIO(data), tmp_path / "c", max_size=1 << 16)


def test_looks_like_archive() -> None:
    assert ctx.looks_like_archive(SAMPLE[:512])
    for kind in ("gzip", "bzip2", "xz", "zstd"):
        assert ctx.looks_like_archive(COMPRESSORS[kind](SAMPLE)[:512])
    assert not ctx.looks_like_archive(b"FROM busybox\nRUN true\n")
    assert not ctx.looks_like_archive(b"FROM busybox\n".ljust(512, b" "))


# fetch_remote --------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    """A loopback http server answering from a dict: path -> (status, body)."""
    routes: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, body = routes.get(self.path, (404, b"no such page"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_fetch_remote_dockerfile(tmp_path: Path, http_server) -> None:
    base, routes = http_server
    routes["/Dockerfile"] = (200, b"FROM busybox\nRUN echo hi\n")
    name = ctx.fetch_remote(base + "/Dockerfile", tmp_path / "c", "")
    assert name == "Dockerfile"
    assert (tmp_path / "c/Dockerfile").read_bytes() == b"FROM busybox\nRUN echo hi\n"


def test_fetch_remote_dockerfile_under_the_given_name(tmp_path: Path, http_server) -> None:
    base, routes = http_server
    routes["/df"] = (200, b"FROM busybox\n")
    assert ctx.fetch_remote(base + "/df", tmp_path / "c", "sub/Dockerfile.dev") == (
        "sub/Dockerfile.dev"
    )
    assert (tmp_path / "c/sub/Dockerfile.dev").read_bytes() == b"FROM busybox\n"


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_fetch_remote_tarball(tmp_path: Path, http_server, kind: str) -> None:
    base, routes = http_server
    routes["/ctx.tar"] = (200, COMPRESSORS[kind](SAMPLE))
    assert ctx.fetch_remote(base + "/ctx.tar", tmp_path / "c", "Dockerfile") == "Dockerfile"
    assert (tmp_path / "c/src/app.py").read_bytes() == b"print(1)\n"


def test_fetch_remote_http_errors_are_clear(tmp_path: Path, http_server) -> None:
    base, routes = http_server
    routes["/boom"] = (500, b"internal trouble")
    with pytest.raises(errors.InvalidArgument, match=r"failed to GET .*/missing with status 404"):
        ctx.fetch_remote(base + "/missing", tmp_path / "c", "Dockerfile")
    with pytest.raises(errors.InvalidArgument, match="status 500.*internal trouble"):
        ctx.fetch_remote(base + "/boom", tmp_path / "c", "Dockerfile")


def test_fetch_remote_connection_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.InvalidArgument, match="failed to GET"):
        ctx.fetch_remote(f"http://127.0.0.1:{port}/x", tmp_path / "c", "Dockerfile")


# git -------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, str]:
    """main: v1 (tagged), then v2; branch `feature` with its own file; a subdir `docs`."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "Dockerfile").write_text("FROM scratch\n# v1\n")
    (r / "docs").mkdir()
    (r / "docs/Dockerfile").write_text("FROM scratch\n# docs\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "v1")
    git(r, "tag", "v1")
    first = git(r, "rev-parse", "HEAD")
    git(r, "checkout", "-q", "-b", "feature")
    (r / "feature.txt").write_text("feature\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "feature")
    git(r, "checkout", "-q", "main")
    (r / "Dockerfile").write_text("FROM scratch\n# v2\n")
    git(r, "commit", "-q", "-am", "v2")
    return {"url": f"file://{r}", "first": first}


def test_git_checkout_default_branch(tmp_path: Path, repo) -> None:
    out = ctx.git_checkout(repo["url"], tmp_path / "co")
    assert out == tmp_path / "co"
    assert "# v2" in (out / "Dockerfile").read_text()
    assert not (out / ".git").exists()
    assert not (out / "feature.txt").exists()


@pytest.mark.parametrize(("ref", "marker"), [("v1", "# v1"), ("feature", "# v1"), ("main", "# v2")])
def test_git_checkout_refs(tmp_path: Path, repo, ref: str, marker: str) -> None:
    out = ctx.git_checkout(f"{repo['url']}#{ref}", tmp_path / "co")
    assert marker in (out / "Dockerfile").read_text()
    assert (out / "feature.txt").exists() is (ref == "feature")


@pytest.mark.parametrize("length", [40, 10])
def test_git_checkout_commit(tmp_path: Path, repo, length: int) -> None:
    out = ctx.git_checkout(f"{repo['url']}#{repo['first'][:length]}", tmp_path / "co")
    assert "# v1" in (out / "Dockerfile").read_text()


def test_git_checkout_subdir_and_keep_git_dir(tmp_path: Path, repo) -> None:
    out = ctx.git_checkout(f"{repo['url']}#v1:docs", tmp_path / "co", keep_git_dir=True)
    assert out == tmp_path / "co/docs"
    assert "# docs" in (out / "Dockerfile").read_text()
    assert (tmp_path / "co/.git").is_dir()
    out = ctx.git_checkout(f"{repo['url']}#:docs", tmp_path / "co2")
    assert out == tmp_path / "co2/docs"


def test_git_checkout_errors(tmp_path: Path, repo) -> None:
    with pytest.raises(errors.InvalidArgument, match="unable to checkout git reference 'nope'"):
        ctx.git_checkout(f"{repo['url']}#nope", tmp_path / "a")
    with pytest.raises(errors.InvalidArgument, match="subdirectory 'missing' not found"):
        ctx.git_checkout(f"{repo['url']}#main:missing", tmp_path / "b")
    with pytest.raises(errors.InvalidArgument, match="subdirectory '../..' not found"):
        ctx.git_checkout(f"{repo['url']}#main:../..", tmp_path / "c")
    with pytest.raises(errors.InvalidArgument, match="git fetch failed"):
        ctx.git_checkout(f"file://{tmp_path}/no-such-repo", tmp_path / "d")


def test_git_never_prompts(tmp_path: Path) -> None:
    # No server on this port: git must fail at once, not wait for a password.
    with pytest.raises(errors.InvalidArgument, match="git fetch failed"):
        ctx.git_checkout("http://127.0.0.1:9/nothing.git", tmp_path / "co")


@pytest.mark.parametrize(
    ("url", "is_git"),
    [
        ("git://example.com/r", True),
        ("git@github.com:o/r.git", True),
        ("github.com/o/r", True),
        ("https://example.com/o/r.git", True),
        ("https://example.com/o/r.git#main:sub", True),
        ("http://example.com/Dockerfile", False),
        ("https://example.com/ctx.tar.gz", False),
        ("./local/dir", False),
    ],
)
def test_is_git_url(url: str, is_git: bool) -> None:
    assert ctx.is_git_url(url) is is_git


def test_split_git_url() -> None:
    assert ctx.split_git_url("github.com/o/r#v1:sub/dir") == (
        "https://github.com/o/r",
        "v1",
        "sub/dir",
    )
    assert ctx.split_git_url("git@h:o/r.git") == ("git@h:o/r.git", "", "")


# apply_dockerignore ------------------------------------------------------------------------


def test_apply_dockerignore_keeps_the_dockerfile(tmp_path: Path) -> None:
    c = tmp_path / "c"
    for name in ("Dockerfile", "a.log", "keep.log", "logs/x", "logs/keep/y", "src/m.py"):
        (c / name).parent.mkdir(parents=True, exist_ok=True)
        (c / name).write_text(name)
    (c / ".dockerignore").write_text("*.log\n!keep.log\nlogs\n!logs/keep\nDockerfile\n")
    ctx.apply_dockerignore(c, "Dockerfile")
    left = sorted(str(p.relative_to(c)) for p in c.rglob("*") if p.is_file())
    assert left == [".dockerignore", "Dockerfile", "keep.log", "logs/keep/y", "src/m.py"]


def test_apply_dockerignore_prefers_the_dockerfiles_own(tmp_path: Path) -> None:
    c = tmp_path / "c"
    (c / "build").mkdir(parents=True)
    (c / "build/app.Dockerfile").write_text("FROM scratch\n")
    (c / "build/app.Dockerfile.dockerignore").write_text("secret\n")
    (c / ".dockerignore").write_text("other\n")
    (c / "secret").write_text("s")
    (c / "other").write_text("o")
    ctx.apply_dockerignore(c, "build/app.Dockerfile")
    assert not (c / "secret").exists() and (c / "other").exists()


def test_remove_ignored_build_files_after_reading(tmp_path: Path) -> None:
    c = tmp_path / "c"
    c.mkdir()
    (c / "Dockerfile").write_text("FROM scratch\n")
    (c / ".dockerfile.0123").write_text("FROM scratch\n")
    (c / "kept").write_text("k")
    (c / ".dockerignore").write_text(".dockerignore\n.dockerfile.0123\n")
    ctx.remove_ignored_build_files(c, ".dockerfile.0123")
    assert sorted(p.name for p in c.iterdir()) == ["Dockerfile", "kept"]
    (c / ".dockerignore").write_text("other\n")
    ctx.remove_ignored_build_files(c, "Dockerfile")
    assert sorted(p.name for p in c.iterdir()) == [".dockerignore", "Dockerfile", "kept"]
