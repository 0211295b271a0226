"""Daphne's access log through Python logging: with LOG_FORMAT=json, one JSON object per line
like every other line of a web process.

daphne writes its access lines (`daphne.access.AccessLogGenerator`) straight to stdout, beside
logging. Its command line builds that generator after it has imported the application, so
`comfyportal.asgi` puts this class in its place (`install`). Paths are logged without their
query string: browsers send their access token in the WebSocket URL (`/ws/jobs/?token=…`).

tests/production/test_daphne_access.py fails when a daphne upgrade changes this.
"""

from __future__ import annotations

import logging

from daphne import access, cli

logger = logging.getLogger("comfyportal.access")

WEBSOCKET_ACTIONS = {"connecting": "WSCONNECTING", "connected": "WSCONNECT", "rejected": "WSREJECT"}
WEBSOCKET_ACTIONS["disconnected"] = "WSDISCONNECT"


class LoggingAccessLog(access.AccessLogGenerator):
    def __init__(self, stream=None):
        super().__init__(stream)  # the stream daphne opened is left unused

    def __call__(self, protocol, action, details):
        if protocol == "http" and action == "complete":
            method, status, size = details["method"], details["status"], details["size"]
        elif protocol == "websocket" and action in WEBSOCKET_ACTIONS:
            method, status, size = WEBSOCKET_ACTIONS[action], None, None
        else:
            return
        path = str(details.get("path") or "").split("?", 1)[0]
        client = details.get("client") or "-"
        logger.info(
            '%s "%s %s" %s %s',
            client,
            method,
            path,
            status if status is not None else "-",
            size if size is not None else "-",
            extra={"client": client, "method": method, "path": path, "status": status, "size": size},
        )


def install() -> None:
    """Make daphne's command line build LoggingAccessLog (it looks the name up when it starts
    the server, after importing the application)."""
    cli.AccessLogGenerator = LoggingAccessLog
