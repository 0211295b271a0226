"""Real processes for integration tests and benchmarks: daphne web instances, qcluster
workers and test ComfyUI nodes, all sharing the test database and Redis.

    with Stack(nodes=2) as stack:        # inside a test that uses `transactional_db`
        stack.web_url, stack.nodes[0].kill(), stack.kill_worker(0), ...
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database this test process uses (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def reset_redis(namespace: str = "*") -> None:
    """Forget runners, wake-ups and queued tasks of a stack (of every stack with "*")."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in (
        f"cp:{namespace}:runner*",
        f"cp:{namespace}:dispatch:*",
        f"cp:{namespace}:*health-lock*",
        f"django_q:comfyportal-{namespace}:*",
    ):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


class Stack:
    def __init__(
        self,
        *,
        nodes: int = 2,
        node_args: dict | None = None,
        webs: int = 1,
        workers: int = 1,
        env: dict | None = None,
        media_root: Path | None = None,
        nodes_in_one_process: bool = False,
    ):
        self.node_count = nodes
        self.nodes_in_one_process = nodes_in_one_process  # benchmarks: see testcomfy.process.spawn_group
        self.node_args = node_args or {}
        self.web_count = webs
        self.worker_count = workers
        self.extra_env = env or {}
        self.media_root = media_root
        self.nodes: list = []
        self.webs: list[tuple[subprocess.Popen, str]] = []
        self.workers: list[subprocess.Popen] = []
        # Its own Redis namespace: processes of an earlier stack can never take this one's work.
        self.namespace = uuid.uuid4().hex[:8]
        self.logs = REPO / "test-artifacts" / "logs" / f"{time.strftime('%H%M%S')}-{os.getpid()}-{id(self) % 10000}"

    # --- environment ---------------------------------------------------------------------
    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "comfyportal.settings",
                "DATABASE_URL": database_url(),
                "REDIS_URL": settings.REDIS_URL,
                "MEDIA_ROOT": str(self.media_root or settings.MEDIA_ROOT),
                "DEBUG": "1",
                "NODE_HEALTH_INTERVAL": "1",
                "NODE_OFFLINE_AFTER": "2",
                "RUNNER_STALE_AFTER": "4",
                "DISPATCH_TICK": "0.5",
                "JOB_RUNNERS": "1",
                "Q_WORKERS": "3",
                "API_RATE_LIMIT": "0",
                "LOGIN_RATE_LIMIT": "0",
                "LOGIN_USER_RATE_LIMIT": "0",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "REDIS_NAMESPACE": self.namespace,
            }
        )
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    @property
    def web_url(self) -> str:
        return self.webs[0][1]

    @property
    def web_urls(self) -> list[str]:
        return [url for _, url in self.webs]

    # --- processes ---------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        self.logs.mkdir(parents=True, exist_ok=True)
        from testcomfy.process import spawn, spawn_group

        try:
            if self.nodes_in_one_process and self.node_count:
                self.nodes = spawn_group(self.node_count, **self.node_args)
            for _ in range(len(self.nodes), self.node_count):
                self.nodes.append(spawn(port=0, **self.node_args))
            for i in range(self.web_count):
                self.start_web(i)
            for i in range(self.worker_count):
                self.start_worker(i)
            if self.worker_count:
                self.start_runners()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _popen(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.logs / f"{log_name}.log", "ab")
        return subprocess.Popen(
            args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_web(self, index: int, port: int | None = None) -> str:
        port = port or free_port()
        process = self._popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "comfyportal.asgi:application"],
            f"web{index}",
        )
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/api/docs", process)
        if index < len(self.webs):
            self.webs[index] = (process, url)
        else:
            self.webs.append((process, url))
        return url

    def stop_web(self, index: int) -> None:
        """SIGTERM a web instance, as a deploy does: its sockets drop."""
        _kill_group(self.webs[index][0], signal.SIGTERM)

    def restart_web(self, index: int) -> str:
        """Start a stopped web instance again at the same address (open pages reconnect)."""
        process, url = self.webs[index]
        _kill_group(process, signal.SIGTERM)
        return self.start_web(index, port=int(url.rsplit(":", 1)[1]))

    def start_worker(self, index: int) -> subprocess.Popen:
        process = self._popen([sys.executable, "manage.py", "qcluster"], f"worker{index}")
        if index < len(self.workers):
            self.workers[index] = process
        else:
            self.workers.append(process)
        return process

    def start_runners(self, timeout: float = 40) -> None:
        """Enqueue runners until a new one announces itself in Redis (a killed one's key may linger)."""
        client = redis.Redis.from_url(settings.REDIS_URL)
        runners = f"cp:{self.namespace}:runner:*"
        before = set(client.scan_iter(match=runners))
        deadline = time.monotonic() + timeout
        while True:
            client.delete(f"cp:{self.namespace}:runner-starter")
            subprocess.run(
                [sys.executable, "manage.py", "start_runners"], cwd=REPO, env=self.env, check=True, capture_output=True
            )
            for _ in range(20):
                if set(client.scan_iter(match=runners)) - before:
                    return
                time.sleep(0.1)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no job runner started (see {self.logs}/worker*.log)")

    def kill_worker(self, index: int) -> None:
        """SIGKILL a whole qcluster (its process group), as a crash would."""
        _kill_group(self.workers[index], signal.SIGKILL)

    def add_node(self, **args):
        from testcomfy.process import spawn

        node = spawn(port=0, **{**self.node_args, **args})
        self.nodes.append(node)
        return node

    def __exit__(self, *exc) -> None:
        for process in self.workers:
            _kill_group(process, signal.SIGKILL)
        for process, _ in self.webs:
            _kill_group(process, signal.SIGTERM)
        for node in self.nodes:
            try:
                node.kill()
            except Exception:
                pass
        reset_redis(self.namespace)


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
