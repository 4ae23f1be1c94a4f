"""freight-shell: a login shell that puts each user in a container of their own.

The dockersh idea on freight. A login (``login``, ``su``, sshd) runs
``freight-shell`` as the user's shell; it

1. reads ``/etc/freight/shell.toml`` (``config``) and finds who logged in
   (``account``),
2. brings up that user's container ``<prefix><user>`` through the Engine API:
   create if missing, start if stopped, reuse if running (``provision``),
3. replaces itself with ``freight exec -i[t] -u UID:GID ... SHELL -l``
   (``command``), so the terminal handling is the freight CLI's.

``main`` wires the three. Start time matters (it runs on every login), so no
module here imports asyncio, h11, http.client or dataclasses.
"""
