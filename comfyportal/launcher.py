"""`make run`: embedded Redis (when REDIS_URL is unset), migrate, bootstrap, then daphne on
127.0.0.1:8000 and a django-q2 cluster in the foreground. Ctrl-C stops all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from comfyportal import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
# What `python -m testcomfy` prints for each server once it accepts connections.
TESTCOMFY_READY = re.compile(r"testcomfy listening on (http://\S+)")


def start_demo_nodes(count: int, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    """Start `count` test ComfyUI servers in one `python -m testcomfy` process (a program of its
    own: the product never imports it) and return that process and the servers' URLs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "testcomfy", "--servers", str(count), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=BASE_DIR,
        env=env,
    )
    urls = []
    for line in process.stdout:  # ends early only if the process exits
        if match := TESTCOMFY_READY.search(line):
            urls.append(match.group(1))
            if len(urls) == count:
                return process, urls
    process.wait()
    raise RuntimeError(f"the demo nodes did not start: python -m testcomfy exited with {process.returncode}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="comfyportal")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo-nodes", type=int, default=0, help="start N test ComfyUI nodes and register them")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "comfyportal.settings")
    python = sys.executable
    children: list[subprocess.Popen] = []
    redis_process = None
    if not env.get("REDIS_URL"):
        redis_process, env["REDIS_URL"] = embedded.start_redis(Path(env.get("VAR_DIR", BASE_DIR / "var")))
        print(f"embedded Redis on {env['REDIS_URL']}", flush=True)

    def stop_all(*_):
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        embedded.stop(redis_process)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        manage = [python, str(BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True)
        if args.demo_nodes:
            demo_nodes, urls = start_demo_nodes(args.demo_nodes, env)
            children.append(demo_nodes)
            env["DEMO_NODES"] = ",".join(urls)
        subprocess.run([*manage, "bootstrap"], env=env, check=True)
        children.append(subprocess.Popen([*manage, "qcluster"], env=env))
        children.append(
            subprocess.Popen(
                [python, "-m", "daphne", "-b", args.host, "-p", str(args.port), "comfyportal.asgi:application"],
                env=env,
            )
        )
        print(f"comfyportal on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a process ended; stopping the others", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
