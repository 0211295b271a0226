"""A web process listens with WEB_LISTEN_BACKLOG (comfyportal/daphne_backlog.py): connections
made while it is busy or still starting wait in the kernel's queue instead of being dropped."""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import time

import pytest
from daphne import cli

from comfyportal.daphne_backlog import install, with_backlog
from tests.harness import Stack


def test_daphne_builds_its_endpoints_by_the_name_we_replace(settings):
    """An upgrade that builds the endpoints elsewhere must fail here (the pin is in requirements.txt)."""
    source = inspect.getsource(cli.CommandLineInterface.run)
    assert source.index("self.load_asgi_app(") < source.index("build_endpoint_description_strings(")
    previous = cli.build_endpoint_description_strings
    try:
        install()
        assert cli.build_endpoint_description_strings is with_backlog
    finally:
        cli.build_endpoint_description_strings = previous
    settings.WEB_LISTEN_BACKLOG = 700
    assert with_backlog(host="127.0.0.1", port=8000, unix_socket="/tmp/web.sock") == [
        "tcp:port=8000:interface=127.0.0.1:backlog=700",
        "unix:/tmp/web.sock",
    ]


def listen_queue_limit(port: int) -> int:
    """The backlog of the socket listening on port, as the kernel reports it (ss: Send-Q)."""
    output = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return int(output.split()[2])


@pytest.mark.slow
def test_connections_to_a_busy_web_process_are_queued(transactional_db, tmp_path):
    stack = Stack(nodes=0, workers=0, env={"WEB_LISTEN_BACKLOG": "300"}, media_root=tmp_path / "media")
    with stack:
        port = int(stack.web_url.rsplit(":", 1)[1])
        assert listen_queue_limit(port) == 300
        process = stack.webs[0][0]
        os.kill(process.pid, signal.SIGSTOP)  # accepts nothing, as while a new process starts
        sockets = []
        try:
            started = time.monotonic()
            for _ in range(200):  # four times Twisted's default backlog
                client = socket.create_connection(("127.0.0.1", port), timeout=0.9)
                sockets.append(client)
            # With a backlog of 50 the 52nd connect waits for a SYN retry (1 s, then 3 s…).
            assert time.monotonic() - started < 5
        finally:
            os.kill(process.pid, signal.SIGCONT)
            for client in sockets:
                client.close()
