"""What a node implementation gets and returns, and the registry of implementations."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL.PngImagePlugin import PngInfo

from ..files import Folders
from ..images import to_pil


@dataclass
class Fake:
    """Stand-in for a model object (MODEL, CLIP, VAE, CONDITIONING, …) that carries its origin."""

    kind: str
    name: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:  # what PreviewAny and error reports show
        return f"<{self.kind} {self.name}>".replace(" >", ">")


@dataclass
class Out:
    """A node's result: its outputs and the optional UI dict (``executed`` / history)."""

    result: tuple[Any, ...]
    ui: dict[str, Any] | None = None


@dataclass
class NodeContext:
    """Per-call context: who runs, where files go, and how to talk to sockets."""

    node_id: str
    class_type: str
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    folders: Folders
    send_text: Callable[[str, str], None]  # (node_id, text) → binary TEXT frame to everyone
    preview_suffix: Callable[[str], str]  # node_id → "_temp_abcde"
    disable_metadata: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def png_info(self) -> PngInfo | None:
        """The PNG text chunks SaveImage writes: ``prompt`` and one per extra_pnginfo key."""
        if self.disable_metadata:
            return None
        meta = PngInfo()
        meta.add_text("prompt", json.dumps(self.prompt))
        extra = self.extra_data.get("extra_pnginfo")
        if isinstance(extra, dict):
            for key, value in extra.items():
                meta.add_text(key, json.dumps(value))
        return meta

    def save_images(
        self, images: np.ndarray, prefix: str, kind: str = "output", compress_level: int = 4
    ) -> list[dict[str, Any]]:
        """SaveImage/PreviewImage's save loop; returns the ``images`` UI list."""
        base = self.folders.output if kind == "output" else self.folders.temp
        folder, filename, counter, subfolder = self.folders.save_image_path(
            prefix, base, images.shape[2], images.shape[1]
        )
        results = []
        meta = self.png_info()
        for batch_number, image in enumerate(images):
            name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            to_pil(image).save(os.path.join(folder, name), pnginfo=meta, compress_level=compress_level)
            results.append({"filename": name, "subfolder": subfolder, "type": kind})
            counter += 1
        return results


NodeFn = Callable[..., Any]
REGISTRY: dict[str, NodeFn] = {}


def node(*names: str) -> Callable[[NodeFn], NodeFn]:
    """Register an implementation for one or more class types."""

    def wrap(fn: NodeFn) -> NodeFn:
        for name in names:
            REGISTRY[name] = fn
        return fn

    return wrap
