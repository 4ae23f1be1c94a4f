"""Images from outside: `import` of a root filesystem tarball (file, stdin or URL)
and `image bootstrap`, which makes base images from what the host has
(Debian's static busybox; a Debian root made by mmdebstrap).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from freight.archive import layers as layer_archive
from freight.errors import InvalidArgument, NotFound, Unavailable
from freight.oci import reference as refs
from freight.oci.image import HistoryEntry
from freight.services.changes import apply_changes
from freight.services.clock import format_ns, now_rfc3339
from freight.services.images import ImageService
from freight.services.model import ContainerConfig
from freight.services.specgen import DEFAULT_PATH_ENV

BUSYBOX = Path("/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""


def import_image(
    images: ImageService,
    stream: BinaryIO,
    repo_tag: str = "",
    changes: list[str] = (),
    message: str = "",
    source: str = "-",
) -> str:
    """`docker import`: one layer from a tarball, config edited by `changes`."""
    config = apply_changes(ContainerConfig(), list(changes))  # validate before reading
    tags = [_tag_of(repo_tag)] if repo_tag else []
    created = now_rfc3339()
    history = [
        HistoryEntry(created=created, created_by="", comment=message or f"Imported from {source}")
    ]
    try:
        with images.creating():
            layer = images.store_layer_stream(stream)
            image_id = images.create_image([layer], config, tags, history, created)
    except BaseException:
        images.collect_garbage()  # the layer blob of a refused archive goes too
        raise
    images.publish_event("import", image_id, image_id)
    return image_id


def _tag_of(repo_tag: str) -> str:
    ref = refs.parse_normalized(repo_tag)
    return str(ref if ref.tag or ref.digest else ref.with_tag(refs.DEFAULT_TAG))


def bootstrap(images: ImageService, name: str) -> str:
    """Make `busybox[:tag]` from /bin/busybox, or `debian[:suite]` with mmdebstrap."""
    ref = refs.parse_normalized(name)
    base = ref.familiar_name()
    tag = ref.tag or refs.DEFAULT_TAG
    if base == "busybox":
        return bootstrap_busybox(images, f"busybox:{tag}")
    if base == "debian":
        suite = "bookworm" if tag == "latest" else tag
        return bootstrap_debian(images, f"debian:{tag}", suite)
    raise InvalidArgument(
        f"cannot bootstrap {name!r}: freight can make 'busybox[:tag]' (from the host's "
        "busybox-static) and 'debian[:suite]' (with mmdebstrap)"
    )


def bootstrap_busybox(images: ImageService, tag: str) -> str:
    if not BUSYBOX.exists():
        raise NotFound(
            "no static busybox at /bin/busybox: install it with 'apt-get install busybox-static'"
        )
    mtime = int(BUSYBOX.stat().st_mtime)
    with tempfile.TemporaryDirectory(prefix="freight-bootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        make_busybox_root(root, mtime)
        layer = _layer_from_dir(images, root, Path(tmp) / "layer.tar")
    created = format_ns(mtime * 1_000_000_000)
    history = [
        HistoryEntry(
            created=created, created_by=f"/bin/sh -c #(nop) ADD file:{layer.diff_id.hex} in / "
        ),
        HistoryEntry(created=created, created_by='/bin/sh -c #(nop)  CMD ["sh"]', empty_layer=True),
    ]
    config = ContainerConfig(cmd=["sh"], env=[DEFAULT_PATH_ENV])
    return images.create_image([layer], config, [tag], history, created)


def make_busybox_root(root: Path, mtime: int) -> None:
    """A busybox root: the binary, a link per applet, /etc/passwd and friends."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "home", "var/spool/mail", "var/www", "dev", "proc", "sys"):  # fmt: skip
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = root / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/shadow").write_text("root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n")
    os.chmod(root / "etc/shadow", 0o640)
    _set_mtimes(root, mtime)


def _set_mtimes(root: Path, mtime: int) -> None:
    """Fixed times make the layer, and so the image id, reproducible."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (mtime, mtime), follow_symlinks=False)
    os.utime(root, (mtime, mtime))


def _layer_from_dir(images: ImageService, root: Path, tar_path: Path):
    with open(tar_path, "wb") as out:
        layer_archive.write_layer_from_dir(root, out)
    with open(tar_path, "rb") as f:
        return images.store_layer_stream(f)


def bootstrap_debian(images: ImageService, tag: str, suite: str) -> str:
    if shutil.which("mmdebstrap") is None:
        raise Unavailable("mmdebstrap is not installed: 'apt-get install mmdebstrap'")
    with tempfile.TemporaryDirectory(prefix="freight-bootstrap-") as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        proc = subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--format=tar", suite, str(tar_path)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise Unavailable(f"mmdebstrap {suite} failed: {proc.stderr.strip()[-800:]}")
        with open(tar_path, "rb") as f:
            layer = images.store_layer_stream(f)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    history = [
        HistoryEntry(
            created=created, created_by=f"/bin/sh -c #(nop) ADD file:{layer.diff_id.hex} in / "
        ),
        HistoryEntry(
            created=created, created_by='/bin/sh -c #(nop)  CMD ["bash"]', empty_layer=True
        ),
    ]
    config = ContainerConfig(cmd=["bash"], env=[DEFAULT_PATH_ENV])
    return images.create_image([layer], config, [tag], history, created)
