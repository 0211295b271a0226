"""``TestComfy``: one stand-in ComfyUI server, runnable in-process or as ``python -m testcomfy``.

The listening socket is managed directly (not through an aiohttp site) so that the
``refuse`` fault can close it and ``recover`` can re-open it on the same port while the
app, queue and history stay alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from ipaddress import ip_address
from typing import Any

from aiohttp import web

from .catalog import Catalog, stock_catalog
from .config import Settings
from .executor import Executor
from .faults import Faults, hang_middleware
from .files import Folders
from .hub import Hub
from .models import ModelMemory, place_models
from .queue import PromptQueue
from .routes import build_routes
from .validation import Validator

log = logging.getLogger("testcomfy")
PACKAGE_VERSIONS = [
    ("comfyui-frontend-package", "1.49.6"),
    ("comfyui-workflow-templates", "0.11.44"),
    ("comfyui-embedded-docs", "0.5.10"),
    ("comfy-kitchen", "0.2.31"),
    ("comfy-aimdo", "0.4.13"),
]


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@web.middleware
async def origin_middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    """ComfyUI's default guard: cross-site fetches and loopback Host/Origin mismatches get 403."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return web.Response(status=403)
    if "Host" in request.headers and "Origin" in request.headers:
        host = request.headers["Host"].lower()
        origin = urllib.parse.urlparse(request.headers["Origin"])
        origin_domain: str | None = origin.netloc.lower()
        host_parsed = urllib.parse.urlsplit("//" + host)
        host_domain: str | None = host
        if origin.port is None:
            host_domain = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = origin.hostname
        if _is_loopback(host_parsed.hostname) and host_domain and origin_domain and host_domain != origin_domain:
            return web.Response(status=403)
    if request.method == "OPTIONS":
        return web.Response()
    return await handler(request)


def _memory() -> tuple[int, int]:
    """(total, available) bytes of RAM, from /proc/meminfo when there is one."""
    try:
        values: dict[str, int] = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, rest = line.split(":", 1)
                values[key] = int(rest.split()[0]) * 1024
        return values["MemTotal"], values.get("MemAvailable", values["MemFree"])
    except (OSError, KeyError, ValueError):
        return 25276063744, 24414429184


class TestComfy:
    """A test ComfyUI server. ``await start()``, use ``url``, ``await stop()``."""

    __test__ = False  # not a pytest test class

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        self.settings = replace(settings or Settings(), **overrides)
        self.host = self.settings.host
        self.port = self.settings.port
        self.dead = False
        self._listener: asyncio.AbstractServer | None = None
        self._runner: web.AppRunner | None = None
        self._temp_root: str | None = None

    # lifecycle -------------------------------------------------------------
    async def start(self, port: int | None = None, host: str | None = None) -> TestComfy:
        """Build everything and listen (port 0 picks a free port; see ``port``/``url``)."""
        s = self.settings
        if port is not None:
            self.port = port
        if host is not None:
            self.host = host
        root, temporary = s.resolved_data_dir()
        self._temp_root = str(root) if temporary else None
        self.folders = Folders(root, default_models=s.default_models and s.models is None)
        if s.models is not None:
            place_models(self.folders, s.models)
        self.model_memory = ModelMemory(s.load_time)
        stock_catalog()  # like ComfyUI, know every node class before listening, not on the first prompt
        self.catalog = Catalog(lambda: _input_files(self.folders.input), self.folders.model_files)
        self.validator = Validator(self.catalog, self.folders.exists_annotated, self.folders.root)
        self.faults = Faults(s.fault_dict(), s.step_time)
        self.hub = Hub(self.features, self.queue_info, self.faults.gate)
        self.queue = PromptQueue(self.hub.queue_updated)
        self.executor = Executor(
            self.queue,
            self.hub,
            self.catalog,
            self.folders,
            self.faults,
            cache_enabled=not s.cache_none,
            cache_limit_bytes=s.cache_limit_mb << 20,
            disable_metadata=s.disable_metadata,
            on_die=self._die,
            model_memory=self.model_memory,
        )
        self.faults.on_refuse = self._close_listener
        self.faults.on_recover = lambda: asyncio.ensure_future(self._open_listener())
        max_size = int((s.max_upload_size_mb or 100) * 1024 * 1024)
        app = web.Application(client_max_size=max_size, middlewares=[hang_middleware(self.faults), origin_middleware])
        api_routes, plain_routes = build_routes(self)
        for route in api_routes:
            app.router.add_route(route.method, route.path, route.handler)
            if not route.path.startswith("/internal"):
                app.router.add_route(route.method, "/api" + route.path, route.handler)
        for route in plain_routes:
            app.router.add_route(route.method, route.path, route.handler)
        self.app = app
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self.hub.start()
        self.executor.start()
        await self._open_listener()
        if s.refuse:
            self.faults.state["refuse"] = True
            self._close_listener()
        return self

    async def stop(self) -> None:
        """Stop serving and remove a temporary data dir."""
        self.faults.cancel_timers()
        self.faults.apply({"hang": False})
        await self.executor.stop()
        await self.hub.stop()
        self._close_listener()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._temp_root:
            shutil.rmtree(self._temp_root, ignore_errors=True)

    async def __aenter__(self) -> TestComfy:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def data_dir(self) -> str:
        return self.folders.root

    # listener (refuse / recover) ---------------------------------------------
    async def _open_listener(self) -> None:
        if self._listener is not None or self.dead or self._runner is None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._runner.server, sock=sock)

    def _close_listener(self) -> None:
        """Close the listening socket and drop open connections (clients see refusals)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        server = self._runner.server if self._runner is not None else None
        for handler in list(getattr(server, "connections", []) or []):
            handler.force_close()
        for ws in list(self.hub.sockets.values()):
            asyncio.ensure_future(ws.close())

    def _die(self) -> None:
        """die_mid_job: exit hard (subprocess) or go silent for good (in-process)."""
        if self.settings.exit_on_die:
            sys.stdout.flush()
            os._exit(1)
        self.dead = True
        self._close_listener()
        raise asyncio.CancelledError()

    # control ---------------------------------------------------------------
    def control(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a /__control__ body (see README.md) and return the new state."""
        changes = dict(changes)
        models = changes.pop("models", None)
        if models is not None:
            for folder, names in dict(models).items():
                for name in names:
                    self.folders.add_model(folder, name)
        if changes.pop("clear_cache", False):
            self.executor.cache.clear()
            self.model_memory.forget()
        if "load_time" in changes:
            self.model_memory.load_time = float(changes.pop("load_time") or 0)
        self.faults.apply(changes)
        return self.control_state()

    def control_state(self) -> dict[str, Any]:
        return {
            **self.faults.snapshot(),
            "cache_none": self.settings.cache_none,
            "cache_entries": len(self.executor.cache.entries),
            **self.model_memory.state(),
            "data_dir": self.folders.root,
            "port": self.port,
        }

    # info -----------------------------------------------------------------
    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def features(self) -> dict[str, Any]:
        size: int | float = 104857600
        if self.settings.max_upload_size_mb is not None:
            size = float(self.settings.max_upload_size_mb * 1024 * 1024)
        return {
            "supports_preview_metadata": True,
            "supports_model_type_tags": True,
            "max_upload_size": size,
            "extension": {"manager": {"supports_v4": True}},
            "node_replacements": True,
            "assets": False,
        }

    def system_stats(self) -> dict[str, Any]:
        total, free = _memory()
        argv = [
            "main.py",
            "--cpu",
            "--listen",
            self.host,
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--disable-api-nodes",
        ]
        return {
            "system": {
                "os": sys.platform,
                "ram_total": total,
                "ram_free": free,
                "comfyui_version": "0.33.0",
                "required_frontend_version": "1.49.6",
                "installed_templates_version": "0.11.44",
                "required_templates_version": "0.11.44",
                "comfy_package_versions": [{"name": n, "installed": v, "required": v} for n, v in PACKAGE_VERSIONS],
                "python_version": sys.version,
                "pytorch_version": "2.13.0+cpu",
                "embedded_python": False,
                "deploy_environment": "local-git",
                "argv": argv,
            },
            "devices": [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": total,
                    "vram_free": free,
                    "torch_vram_total": total,
                    "torch_vram_free": free,
                }
            ],
        }


def _input_files(folder: str) -> list[str]:
    from .catalog import list_visible_files

    return list_visible_files(folder)
