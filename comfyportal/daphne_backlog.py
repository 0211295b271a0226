"""A listen backlog for daphne's TCP endpoints (`WEB_LISTEN_BACKLOG`).

daphne builds `tcp:port=…:interface=…` for `-b/-p`, so Twisted listens with its default backlog
of 50. When every open page reconnects at once (a web restart), more than 50 connections wait to
be accepted while the new process starts; the kernel drops the rest of the SYNs and those
clients retry only after 1, 3, 7 s. A backlog sized for the tabs a web instance holds queues
them instead (the kernel caps it at `net.core.somaxconn`).
tests/production/test_daphne_backlog.py fails when a daphne upgrade changes this.
"""

from __future__ import annotations

from daphne import cli
from daphne.endpoints import build_endpoint_description_strings
from django.conf import settings


def with_backlog(*args, **kwargs) -> list[str]:
    """daphne's endpoint strings, each TCP one with the configured backlog."""
    return [
        f"{description}:backlog={settings.WEB_LISTEN_BACKLOG}" if description.startswith("tcp:") else description
        for description in build_endpoint_description_strings(*args, **kwargs)
    ]


def install() -> None:
    """Make daphne's command line build endpoints with the backlog (it looks the name up when it
    starts the server, after importing the application)."""
    cli.build_endpoint_description_strings = with_backlog
