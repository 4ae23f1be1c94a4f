"""Content store conformance: every implementation must pass (ours is the only one so far).

Each test takes `open_store`, a factory that opens a store on a root, so
tests can reopen the same root as a restarted daemon would.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from freight import errors
from freight.content import BlobInfo, ContentStore
from freight.oci.digest import Digest

IMPLEMENTATIONS = {"freight": ContentStore}

OpenStore = Callable[[], ContentStore]


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request, tmp_path) -> OpenStore:
    factory = IMPLEMENTATIONS[request.param]
    return lambda: factory(tmp_path / "content")


def test_put_then_read(open_store):
    store = open_store()
    d = store.put(b"hello")
    assert d == Digest.of(b"hello")
    assert store.exists(d)
    assert store.read(d) == b"hello"
    assert store.info(d) == BlobInfo(d, 5)
    with store.open(d) as f:
        assert f.read() == b"hello"


def test_put_is_idempotent(open_store):
    store = open_store()
    assert store.put(b"x") == store.put(b"x")
    assert [info.digest for info in store.list()] == [Digest.of(b"x")]


def test_writer_streams_and_verifies(open_store):
    store = open_store()
    data = os.urandom(3 << 20)
    with store.writer("layer-1") as w:
        for i in range(0, len(data), 65536):
            w.write(data[i : i + 65536])
        d = w.commit(Digest.of(data), len(data))
    assert store.read(d) == data


@pytest.mark.parametrize(
    ("expected", "size", "message"),
    [(Digest.of(b"other"), None, "digest"), (None, 99, "size")],
)
def test_commit_mismatch_refuses_and_leaves_nothing(open_store, expected, size, message):
    store = open_store()
    w = store.writer("ref")
    w.write(b"data")
    with pytest.raises(errors.InvalidArgument, match=message):
        w.commit(expected, size)
    assert list(store.list()) == []
    assert not store.exists(Digest.of(b"data"))
    store.writer("ref").abort()  # the ref is free again


def test_abort_leaves_no_blob_and_frees_the_ref(open_store):
    store = open_store()
    w = store.writer("ref")
    w.write(b"partial")
    w.abort()
    w.abort()
    assert list(store.list()) == []
    with pytest.raises(errors.InvalidArgument):
        w.write(b"more")
    store.writer("ref").abort()


def test_leaving_the_with_block_uncommitted_aborts(open_store):
    store = open_store()
    with pytest.raises(RuntimeError), store.writer("ref") as w:
        w.write(b"partial")
        raise RuntimeError
    assert list(store.list()) == []


def test_a_ref_has_one_writer_at_a_time(open_store):
    store = open_store()
    with store.writer("ref"), pytest.raises(errors.Unavailable):
        store.writer("ref")


def test_missing_blobs_are_not_found(open_store):
    store = open_store()
    missing = Digest.of(b"missing")
    assert not store.exists(missing)
    for call in (store.info, store.open, store.read, store.delete):
        with pytest.raises(errors.NotFound):
            call(missing)


def test_delete_and_list(open_store):
    store = open_store()
    a, b = store.put(b"a"), store.put(b"b")
    assert {i.digest for i in store.list()} == {a, b}
    store.delete(a)
    assert [i.digest for i in store.list()] == [b]


def test_blobs_survive_reopen(open_store):
    d = open_store().put(b"kept")
    assert open_store().read(d) == b"kept"


def test_abandoned_writer_leaves_no_blob_after_reopen(open_store):
    store = open_store()
    w = store.writer("ref")
    w.write(b"never committed")
    w._file.flush()  # as if the process died with the data on disk
    del store
    reopened = open_store()
    assert list(reopened.list()) == []


def test_concurrent_writers_of_different_refs(open_store):
    store = open_store()
    blobs = [os.urandom(100_000) for _ in range(8)]

    def write(i: int) -> None:
        with store.writer(f"ref-{i}") as w:
            w.write(blobs[i])
            w.commit(Digest.of(blobs[i]))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i.digest for i in store.list()} == {Digest.of(b) for b in blobs}


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from freight.content import ContentStore
    w = ContentStore(Path(sys.argv[1])).writer("killed")
    w.write(b"x" * 1_000_000)
    w._file.flush()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_writer_killed_mid_write_leaves_no_blob(open_store, tmp_path):
    root = tmp_path / "content"
    open_store()  # create the root the way the implementation does
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "ready\n"
        ingests = list((root / "ingest").iterdir()) if (root / "ingest").exists() else []
        # While the writer lives its ingest is protected from cleaning.
        store = open_store()
        with pytest.raises(errors.Unavailable):
            store.writer("killed")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    reopened = open_store()
    assert list(reopened.list()) == []
    if ingests:  # our layout: the dead writer's ingest file is gone
        assert not any(p.exists() for p in ingests)
    with reopened.writer("killed") as w:  # and the ref can be written again
        w.write(b"ok")
        assert w.commit() == Digest.of(b"ok")


def test_blob_files_are_read_only(open_store):
    store = open_store()
    d = store.put(b"immutable")
    path = store.path(d)
    assert isinstance(path, Path) and path.exists()
    assert path.stat().st_mode & 0o222 == 0
