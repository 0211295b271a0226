"""`make demo`: the launcher starts the test ComfyUI as a program of its own, never importing it."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

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
