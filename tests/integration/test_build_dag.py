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
