"""freight.shim: one small process per container that outlives the daemon.

It owns the container's stdio (copied into the json-file log), reaps the
container as child subreaper and records its exit in exit.json. See `main`.
"""
