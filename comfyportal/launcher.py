"""`make run`: embedded Redis (when REDIS_URL is unset), migrate, bootstrap, then daphne on
127.0.0.1:8000 and a django-q2 cluster. Ctrl-C or SIGTERM stops all of them, in order, within
STOP_SECONDS (tests/test_launcher.py).
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
        start_new_session=True,  # stopped by the launcher, in its turn (not by Ctrl-C directly)
    )
    urls = []
    for line in process.stdout:  # ends early only if the process exits
        if match := TESTCOMFY_READY.search(line):
            urls.append(match.group(1))
            if len(urls) == count:
                return process, urls
    process.wait()
    raise RuntimeError(f"the demo nodes did not start: python -m testcomfy exited with {process.returncode}")


class Children:
    """The launcher's processes, each in a session of its own: Ctrl-C in the terminal reaches
    only the launcher, which stops them in order (the worker and the web first, while Redis
    still answers, then the test nodes, then Redis), each group killed if it outlives its turn."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.stopping: list[int] = []  # the signals received
        self.worker: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.nodes: subprocess.Popen | None = None

    def on_signal(self, signum, frame) -> None:
        self.stopping.append(signum)  # acted on by the main loop: nothing may block in a handler

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(args, env=self.env, cwd=BASE_DIR, start_new_session=True, **kwargs)

    def run_step(self, args: list[str]) -> bool:
        """Run a step (migrate, bootstrap) to its end; False if it failed or a signal came."""
        process = self.popen(args)
        while process.poll() is None:
            if self.stopping:
                stop_group(process, signal.SIGTERM, 3)
                return False
            time.sleep(0.1)
        return process.returncode == 0

    def running(self) -> list[subprocess.Popen]:
        return [p for p in (self.worker, self.web, self.nodes) if p is not None]

    def stop(self) -> None:
        """Within STOP_SECONDS: the worker (its runners hand their jobs over) and the web, then
        the test nodes; Redis last (embedded.stop, by the caller)."""
        started = time.monotonic()
        first = [p for p in (self.worker, self.web) if p is not None]
        for process in first:
            # To the worker's master alone: it stops its cluster in order (manage.py qcluster).
            process.send_signal(signal.SIGTERM)
        for process in first:
            stop_group(process, None, max(0.1, started + STOP_SECONDS - 1.5 - time.monotonic()))
        if self.nodes is not None:
            stop_group(self.nodes, signal.SIGINT, 0.5)


# Ctrl-C or SIGTERM to everything gone (the embedded Redis included): the worker's own stop
# timeout is shorter, so that it ends by itself.
STOP_SECONDS = 5.0
WORKER_STOP_TIMEOUT = "3"


def signal_group(process, signum) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(process, signum, timeout: float) -> None:
    """Send `signum` (if any) to the process, wait up to `timeout`, then kill its group (the
    process and whatever it started: no orphan is left)."""
    if signum is not None and process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"{process.args[1:3]} did not stop in time: killed", flush=True)
    signal_group(process, signal.SIGKILL)
    process.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="comfyportal")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo-nodes", type=int, default=0, help="start N test ComfyUI nodes and register them")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "comfyportal.settings")
    env.setdefault("WORKER_STOP_TIMEOUT", WORKER_STOP_TIMEOUT)
    children = Children(env)
    previous = {signum: signal.signal(signum, children.on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    python = sys.executable
    redis_process = None
    try:
        if not env.get("REDIS_URL"):
            redis_process, env["REDIS_URL"] = embedded.start_redis(Path(env.get("VAR_DIR", BASE_DIR / "var")))
            print(f"embedded Redis on {env['REDIS_URL']}", flush=True)
        manage = [python, str(BASE_DIR / "manage.py")]
        if not children.run_step([*manage, "migrate", "--noinput"]):
            return 0 if children.stopping else 1
        if args.demo_nodes and not children.stopping:
            children.nodes, urls = start_demo_nodes(args.demo_nodes, env)
            env["DEMO_NODES"] = ",".join(urls)
        if not children.run_step([*manage, "bootstrap"]):
            return 0 if children.stopping else 1
        children.worker = children.popen([*manage, "qcluster"])
        children.web = children.popen(
            [python, "-m", "daphne", "-b", args.host, "-p", str(args.port), "comfyportal.asgi:application"]
        )
        print(f"comfyportal on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
        while not children.stopping:
            if any(child.poll() is not None for child in children.running()):
                print("a process ended; stopping the others", flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        if children.stopping:
            print(f"{signal.Signals(children.stopping[0]).name}: stopping the worker, the web, then Redis", flush=True)
        children.stop()
        embedded.stop(redis_process)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
