"""Fault injection: the ways real GPU nodes misbehave, switchable at run time.

State lives in ``Faults.state`` and is read by the routes, the worker and the server's
listener. ``POST /__control__`` (not part of ComfyUI) changes it; see README.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

CONTROL_PATH = "/__control__"
GARBAGE_HTML = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n"
)
GARBAGE_JSON = '{"system": {"os": "linux", "ram_total": 2527606'


class Faults:
    """Current fault state plus the hooks that act on the listener (refuse/recover)."""

    def __init__(self, initial: dict[str, Any], step_time: float):
        self.state: dict[str, Any] = {
            "job_time": 0.0,
            "step_time": step_time,
            "refuse": False,
            "hang": False,
            "die_mid_job": False,
            "execution_error": 0,
            "slow_system_stats": 0.0,
            "garbage": None,
        }
        self._not_hung = asyncio.Event()
        self._not_hung.set()
        self.on_refuse: Callable[[], Any] = lambda: None
        self.on_recover: Callable[[], Any] = lambda: None
        self._timers: list[asyncio.TimerHandle] = []
        self.apply({k: v for k, v in initial.items() if k not in ("refuse",)})

    async def gate(self) -> None:
        """Returns at once unless hanging; then waits for recovery."""
        await self._not_hung.wait()

    @property
    def hung(self) -> bool:
        return not self._not_hung.is_set()

    def take_die(self) -> bool:
        if self.state["die_mid_job"]:
            self.state["die_mid_job"] = False
            return True
        return False

    def take_execution_error(self) -> bool:
        if self.state["execution_error"] > 0:
            self.state["execution_error"] -= 1
            return True
        return False

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a control request; raises ValueError for unknown keys or bad values."""
        unknown = set(changes) - set(self.state) - {"recover", "reset"}
        if unknown:
            raise ValueError(f"unknown control keys: {sorted(unknown)}")
        loop = asyncio.get_running_loop()
        if changes.get("reset"):
            changes = {
                "job_time": 0.0,
                "hang": False,
                "die_mid_job": False,
                "execution_error": 0,
                "slow_system_stats": 0.0,
                "garbage": None,
                **{k: v for k, v in changes.items() if k != "reset"},
            }
        if changes.get("recover"):
            changes = {**changes, "hang": False}
            self.state["refuse"] = False
            self.on_recover()
        for key in ("job_time", "step_time", "slow_system_stats"):
            if key in changes:
                self.state[key] = float(changes[key] or 0)
        if "execution_error" in changes:
            value = changes["execution_error"]
            self.state["execution_error"] = int(value is True) if isinstance(value, bool) else int(value or 0)
        if "die_mid_job" in changes:
            self.state["die_mid_job"] = bool(changes["die_mid_job"])
        if "garbage" in changes:
            value = changes["garbage"]
            if value not in (None, False, True, "html", "json"):
                raise ValueError("garbage must be 'html', 'json', true or null")
            self.state["garbage"] = "html" if value is True else (value or None)
        if "hang" in changes:
            value = changes["hang"]
            self.state["hang"] = bool(value)
            if value:
                self._not_hung.clear()
                if not isinstance(value, bool):
                    self._timers.append(loop.call_later(float(value), self.apply, {"hang": False}))
            else:
                self._not_hung.set()
        if changes.get("refuse"):
            value = changes["refuse"]
            self.state["refuse"] = True
            # Let the control answer leave first, then close the listener.
            loop.call_later(0.05, self.on_refuse)
            if not isinstance(value, bool):
                self._timers.append(loop.call_later(float(value), self.apply, {"recover": True}))
        elif "refuse" in changes and self.state["refuse"]:
            self.state["refuse"] = False
            self.on_recover()
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return dict(self.state)

    def cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()


def hang_middleware(faults: Faults) -> Callable[..., Any]:
    """While hanging, hold every request except the control endpoint (connections stay open)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if faults.hung and request.path != CONTROL_PATH:
            await faults.gate()
        return await handler(request)

    return middleware
