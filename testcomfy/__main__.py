"""``python -m testcomfy``: run one test ComfyUI server until SIGINT/SIGTERM.

Prints ``testcomfy listening on http://HOST:PORT`` on stdout once ready (the subprocess
helper waits for that line). SIGUSR1 recovers from ``refuse``/``hang``. ``--servers N``
runs N independent servers (own port, queue, history, data dir) in this one process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import replace

from .config import settings_from_args
from .server import TestComfy


async def _serve(argv: list[str]) -> None:
    settings, count = settings_from_args(argv)
    servers = [
        TestComfy(
            replace(
                settings,
                port=settings.port + i if settings.port else 0,
                data_dir=f"{settings.data_dir}/server-{i}" if settings.data_dir and count > 1 else settings.data_dir,
            )
        )
        for i in range(count)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first: the parent may signal as soon as it reads the "listening" line.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: [server.control({"recover": True}) for server in servers])
    for server in servers:
        await server.start()
        print(f"testcomfy listening on {server.url} data_dir={server.data_dir}", flush=True)
    await stop.wait()
    for server in servers:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(_serve(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
