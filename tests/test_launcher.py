"""`make run` / `make demo`: the launcher starts the test ComfyUI as a program of its own, never
importing it, and stops everything it started, in order, on SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from comfyportal.launcher import start_demo_nodes


def test_demo_nodes_are_one_testcomfy_process_with_a_server_per_node():
    process, urls = start_demo_nodes(2, dict(os.environ))
    try:
        assert len(set(urls)) == 2, urls
        for url in urls:
            with urllib.request.urlopen(url + "/system_stats", timeout=5) as response:
                assert "system" in json.loads(response.read())
    finally:
        process.send_signal(signal.SIGINT)  # what the launcher sends its children on Ctrl-C
        assert process.wait(10) == 0


def test_demo_nodes_that_cannot_start_are_an_error_not_a_hang():
    broken = {**os.environ, "PYTHONHOME": "/nonexistent"}  # the interpreter dies before testcomfy runs
    with pytest.raises(RuntimeError, match="did not start"):
        start_demo_nodes(2, broken)


# --- stopping (issue 20 item 18) ------------------------------------------------------------


@pytest.fixture
def launcher_dir():
    directory = Path(tempfile.mkdtemp(prefix="cp-launch-"))  # short: the Redis socket lives here
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_make_run_stops_everything_in_order_within_5_seconds(launcher_dir, signum):
    """`make run`'s launcher with its embedded Redis, worker (a job runner running) and web:
    SIGTERM to it (a process manager) or SIGINT to its process group (Ctrl-C in a terminal)
    ends every process it started within 5 s, with no traceback and Redis stopped last."""
    from tests.harness import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL") and not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="comfyportal.settings",
        VAR_DIR=str(launcher_dir / "var"),
        DATABASE_URL=f"sqlite:///{launcher_dir / 'db.sqlite3'}",
        DEBUG="1",
        JOB_RUNNERS="1",
        Q_WORKERS="2",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        ADMIN_PASSWORD="launcher-test-password",
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "comfyportal.launcher", "--port", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launcher.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(" started" in line and "runner " in line for line in lines):
            assert launcher.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        # The web and the worker start side by side: the runner's line says nothing of daphne.
        while not web_answers(port):
            assert launcher.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        processes = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        assert "redis-server" in names and "qcluster" in names and "daphne" in names, names

        started = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(launcher.pid, signal.SIGINT)
        else:
            launcher.send_signal(signal.SIGTERM)
        launcher.wait(15)
        stopped_in = time.monotonic() - started
        _, left = psutil.wait_procs(processes, timeout=0.5)
    finally:
        if launcher.poll() is None:  # the test failed before stopping it: leave nothing behind
            for process in [*psutil.Process(launcher.pid).children(recursive=True), launcher]:
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
    reader.join(5)
    output = "".join(lines)
    print(f"\n{signal.Signals(signum).name}: everything stopped in {stopped_in:.2f} s")
    assert not left, f"left running: {[' '.join(p.cmdline()) for p in left]}"
    assert stopped_in < 5, output[-3000:]
    assert launcher.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    assert "stopping the worker, the web, then Redis" in output
    tail = output[output.index("stopping the worker, the web, then Redis") :]
    assert "Error" not in tail and "redis" not in tail.lower().replace("then redis", ""), tail


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workflow-spec/v1.json", timeout=10) as response:
            return response.status == 200
    except OSError:  # not listening yet (URLError is an OSError)
        return False
