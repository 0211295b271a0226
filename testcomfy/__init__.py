"""A stand-in ComfyUI 0.33 server for tests and benchmarks (see README.md)."""

from __future__ import annotations

from .config import Settings
from .server import TestComfy

__all__ = ["Settings", "TestComfy"]
