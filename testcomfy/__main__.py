"""``python -m testcomfy``: run one test ComfyUI server until SIGINT/SIGTERM.

Prints ``testcomfy listening on http://HOST:PORT`` on stdout once ready (the subprocess
helper waits for that line). SIGUSR1 recovers from ``refuse``/``hang``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from .config import settings_from_args
from .server import TestComfy


async def _serve(argv: list[str]) -> None:
    settings = settings_from_args(argv)
    server = TestComfy(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first: the parent may signal as soon as it reads the "listening" line.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: server.control({"recover": True}))
    await server.start()
    print(f"testcomfy listening on {server.url} data_dir={server.data_dir}", flush=True)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_serve(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
