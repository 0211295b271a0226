"""LOG_FORMAT=json: a web process's whole output is one JSON object per line, daphne's access
log included (comfyportal/daphne_access.py), and no WebSocket token is logged."""

from __future__ import annotations

import inspect
import json
import logging

import httpx
import pytest
from daphne import cli

from comfyportal.daphne_access import LoggingAccessLog, install
from tests.harness import Stack

SECRET = "eyJhbGciOiJIUzI1NiJ9.not-a-real-token.signature"


def test_daphne_builds_its_access_log_by_the_name_we_replace():
    """An upgrade that builds the access log elsewhere must fail here (the pin is in requirements.txt)."""
    source = inspect.getsource(cli.CommandLineInterface.run)
    assert source.index("self.load_asgi_app(") < source.index("AccessLogGenerator(access_log_stream)")
    previous = cli.AccessLogGenerator
    try:
        install()
        assert cli.AccessLogGenerator is LoggingAccessLog
    finally:
        cli.AccessLogGenerator = previous


def test_access_entries_are_log_records_without_query_strings(caplog):
    log = LoggingAccessLog()
    with caplog.at_level(logging.INFO, logger="comfyportal.access"):
        log(
            "http",
            "complete",
            {"path": "/api/jobs?page=2", "status": 200, "method": "GET", "client": "1.2.3.4:5", "size": 17},
        )
        log("websocket", "connecting", {"path": f"/ws/jobs/?token={SECRET}", "client": "1.2.3.4:6"})
        log("http", "something-else", {})
    first, second = caplog.records
    assert (first.method, first.path, first.status, first.size, first.client) == (
        "GET",
        "/api/jobs",
        200,
        17,
        "1.2.3.4:5",
    )
    assert (second.method, second.path, second.status) == ("WSCONNECTING", "/ws/jobs/", None)
    assert SECRET not in caplog.text


@pytest.mark.slow
def test_a_web_process_writes_only_json_lines(transactional_db, tmp_path):
    from websockets.sync.client import connect

    stack = Stack(nodes=0, workers=0, env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}, media_root=tmp_path / "media")
    with stack:
        base = stack.web_url
        assert httpx.get(base + "/api/workflow-spec/v1.json").status_code == 200
        assert httpx.get(base + "/api/jobs?page=2").status_code == 401
        assert httpx.get(base + "/no/such/page").status_code == 404
        static = httpx.get(base + "/static/css/site.css")
        assert static.status_code == 200 and static.headers["x-content-type-options"] == "nosniff"
        try:
            with connect(base.replace("http://", "ws://") + f"/ws/jobs/?token={SECRET}", open_timeout=5) as ws:
                ws.recv(timeout=2)
        except Exception:  # refused or closed: an invalid token
            pass
        process = stack.webs[0][0]
    assert process.returncode is not None
    output = (stack.logs / "web0.log").read_text()
    entries = []
    for line in output.splitlines():
        if line.strip():
            entry = json.loads(line)  # fails on any line that is not JSON
            assert {"time", "level", "logger", "message"} <= entry.keys(), line
            entries.append(entry)
    access = [e for e in entries if e["logger"] == "comfyportal.access"]
    assert {"GET /api/workflow-spec/v1.json", "GET /no/such/page", "GET /static/css/site.css"} <= {
        f"{e['method']} {e['path']}" for e in access
    }
    assert any(e["method"].startswith("WS") and e["path"] == "/ws/jobs/" for e in access), access
    assert SECRET not in output
