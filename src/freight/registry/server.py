"""Running the registry: the HTTP listener, upload expiry, signals.

    await serve(config, ready=lambda port: print(port))

SIGINT/SIGTERM stop it cleanly. Abandoned uploads (untouched for `upload_expiry`
seconds) are removed at start-up and then every EXPIRY_INTERVAL seconds; pull
counts are flushed every FLUSH_INTERVAL seconds and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from freight.registry.api import Registry
from freight.registry.config import Config
from freight.registry.httpserver import HttpServer, tls_context

EXPIRY_INTERVAL = 600.0
FLUSH_INTERVAL = 10.0  # pull counts reach hub.json this often

_log = logging.getLogger(__name__)


async def serve(config: Config, ready: Callable[[int], None] | None = None) -> None:
    app = Registry(config)
    host, port = config.host_port()
    tls = tls_context(config.tls_cert, config.tls_key) if config.tls_cert else None
    server = HttpServer(app, host, port, tls)
    await server.start()
    if ready is not None:
        ready(server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    expiry = asyncio.create_task(_expire(app, config.upload_expiry))
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    app.hub.flush()
    expiry.cancel()
    serving.cancel()
    await server.close()
    with contextlib.suppress(asyncio.CancelledError):
        await serving


async def _expire(app: Registry, max_age: int) -> None:
    last = -EXPIRY_INTERVAL
    while True:
        now = asyncio.get_running_loop().time()
        if now - last >= EXPIRY_INTERVAL:
            gone = await asyncio.to_thread(app.storage.expire_uploads, max_age)
            if gone:
                _log.info("removed %d abandoned uploads", len(gone))
            last = now
        app.hub.flush()
        await asyncio.sleep(FLUSH_INTERVAL)
