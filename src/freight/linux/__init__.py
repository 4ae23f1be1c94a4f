"""freight.linux: the only package that makes raw system calls.

`syscalls` wraps libc with ctypes (mount, pivot_root, unshare, setns, prctl…),
`capabilities` names and sets capabilities, `netdev` brings interfaces up, and
`seam` exposes all of it as a `Syscalls` protocol with a real implementation
and a recording fake, so code above (rootfs setup) is unit-tested without root.

Daemon services that mount overlay root filesystems call
`freight.linux.syscalls.mount` / `umount` with the named `MS_*` / `MNT_*` flags.
"""
