"""freight.runtime: an OCI runtime (create/start/state/kill/delete on a bundle), like runc.

Library entry point: `freight.runtime.api.open_runtime`. Command line:
`python -m freight.runtime`. Modules: `config` (spec → validated config),
`cgroups`, `rootfs`, `sync` (the create protocol, drawn), `init` (code run in
the forked children), `lookup`, `state`, `native` (freight's runtime), `runc`.
"""
