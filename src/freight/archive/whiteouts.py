"""Whiteouts: how a layer says "this path was deleted", in tar and in overlayfs.

In a layer tar (OCI image-spec layer.md, AUFS convention):

    etc/.wh.motd          etc/motd is deleted
    var/cache/.wh..wh..opq
                          var/cache is opaque: nothing below it from lower layers

In an overlayfs upper directory, the kernel's own encoding:

    etc/motd              a character device 0:0
    var/cache             a directory with xattr trusted.overlay.opaque="y"
"""

from __future__ import annotations

import os
import stat

PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
# Any trusted.overlay.* xattr in a layer would steer the kernel's overlay
# lookup (opaque, redirect, metacopy); layers may not carry them.
OVERLAY_XATTR_PREFIX = "trusted.overlay."


def is_overlay_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_overlay_opaque(path: str | os.PathLike[str]) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
