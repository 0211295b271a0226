"""Run a test server as a subprocess: ``spawn(port=0, job_time=2) -> ServerProcess``.

A real process is needed for faults that end the process (``die_mid_job``, ``kill()``)
and for benchmarks. The helper waits for the server's "listening" line, keeps the port
across ``restart()``, and keeps the data dir (so inputs survive a restart, as on a node).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"testcomfy listening on (http://\S+)")


def flags_to_argv(flags: dict[str, Any]) -> list[str]:
    """``{"job_time": 2, "cache_none": True}`` → ``["--job-time", "2", "--cache-none"]``."""
    argv: list[str] = []
    for key, value in flags.items():
        opt = "--" + key.replace("_", "-")
        if value is True:
            argv.append(opt)
        elif value is False or value is None:
            continue
        elif isinstance(value, (dict, list)):  # --models takes JSON
            argv += [opt, json.dumps(value)]
        else:
            argv += [opt, str(value)]
    return argv


class ServerProcess:
    """Handle on one ``python -m testcomfy`` child."""

    def __init__(self, host: str, port: int, data_dir: str, flags: dict[str, Any], timeout: float):
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self.flags = dict(flags)
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.urls: list[str] = []

    def start(self) -> ServerProcess:
        """Start the child and wait until it listens (or, with ``refuse``, is ready)."""
        argv = [
            sys.executable,
            "-m",
            "testcomfy",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            self.data_dir,
            *flags_to_argv(self.flags),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        log = open(os.path.join(self.data_dir, "testcomfy.log"), "a")
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(REPO_ROOT), env=env
        )
        log.close()
        deadline = time.monotonic() + self.timeout
        assert self.process.stdout is not None
        self.urls = []
        while len(self.urls) < int(self.flags.get("servers") or 1):  # one line per server
            line = ""
            while time.monotonic() < deadline:
                line = self.process.stdout.readline()
                if line or self.process.poll() is not None:
                    break
            match = READY.search(line)
            if not match:
                self.kill()
                raise RuntimeError(f"testcomfy did not start (see {self.data_dir}/testcomfy.log): {line!r}")
            self.urls.append(match.group(1))
        self.url = self.urls[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a node losing power."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
        self._reap()

    def terminate(self, timeout: float = 5.0) -> None:
        """SIGTERM (graceful), then SIGKILL if it lingers."""
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait()
            if self.process.stdout:
                self.process.stdout.close()

    def restart(self, **flags: Any) -> ServerProcess:
        """Stop (if running) and start again on the same port and data dir; ``flags`` replace the old ones."""
        self.terminate()
        if flags:
            self.flags = flags
        return self.start()

    def recover(self) -> None:
        """Leave ``refuse``/``hang`` (SIGUSR1; works even when the port refuses)."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGUSR1)

    def control(self, **changes: Any) -> dict[str, Any]:
        """POST /__control__ and return the new fault state."""
        request = urllib.request.Request(
            self.url + "/__control__",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()


def spawn(
    port: int = 0, host: str = "127.0.0.1", data_dir: str | None = None, timeout: float = 30.0, **flags: Any
) -> ServerProcess:
    """Start ``python -m testcomfy`` with CLI ``flags`` (``job_time=2`` → ``--job-time 2``)."""
    directory = data_dir or tempfile.mkdtemp(prefix="testcomfy-proc-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return ServerProcess(host, port, directory, flags, timeout).start()


class GroupMember:
    """One server of a process that runs several (`spawn_group`). They share the process:
    killing one kills them all."""

    def __init__(self, group: ServerProcess, url: str):
        self.group = group
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return self.group.process

    @property
    def pid(self) -> int | None:
        return self.group.pid

    def alive(self) -> bool:
        return self.group.alive()

    def kill(self) -> None:
        self.group.kill()


def spawn_group(
    count: int, host: str = "127.0.0.1", data_dir: str | None = None, timeout: float = 60.0, **flags: Any
) -> list[GroupMember]:
    """``count`` independent servers (own port, queue, history) in one ``python -m testcomfy``
    process: for benchmarks, where many processes of stand-in nodes would spend the machine's
    few cores switching between themselves."""
    directory = data_dir or tempfile.mkdtemp(prefix="testcomfy-group-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    group = ServerProcess(host, 0, directory, {**flags, "servers": count}, timeout).start()
    return [GroupMember(group, url) for url in group.urls]
