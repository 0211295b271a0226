"""Model files of one test server: its per-node model list and a simulated load time.

A real ComfyUI keeps the outputs of loader nodes while the next prompts use the same files
(``../shared/comfy/README.md``, "Model files"): a prompt naming other files loads them anew,
seconds to tens of seconds on a GPU. ``ModelMemory`` plays that: it remembers the model files of
the last prompt it ran and makes a prompt wait ``load_time`` seconds per file it does not hold.
The loads are counted (``/__control__`` shows them) so a benchmark can report them.
"""

from __future__ import annotations

import json
from typing import Any

from .catalog import MODEL_INPUTS
from .files import Folders


def parse_models(value: str | dict | None) -> dict[str, list[str]] | None:
    """``--models`` as JSON (``{"checkpoints": ["a.safetensors", "sdxl/b.safetensors"]}``), or None."""
    if value is None:
        return None
    data = json.loads(value) if isinstance(value, str) else value
    if not isinstance(data, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) and n for n in names) for names in data.values()
    ):
        raise ValueError('--models takes a JSON object {"folder": ["file", …]}')
    return {str(folder): list(names) for folder, names in data.items()}


def place_models(folders: Folders, models: dict[str, list[str]]) -> None:
    """Create the node's model files (empty placeholders; sub-folders allowed)."""
    for folder, names in models.items():
        for name in names:
            folders.add_model(folder, name)


def prompt_models(prompt: dict[str, Any]) -> frozenset[str]:
    """The model files ("folder/name") a prompt's loader nodes name."""
    out = set()
    for node in prompt.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            folder = MODEL_INPUTS.get((node.get("class_type"), name))
            if folder is not None and isinstance(value, str):
                out.add(f"{folder}/{value}")
    return frozenset(out)


class ModelMemory:
    """What the server holds loaded, and what loading cost so far."""

    def __init__(self, load_time: float = 0.0):
        self.load_time = load_time
        self.held: frozenset[str] = frozenset()
        self.loads = 0  # model files loaded
        self.load_seconds = 0.0

    def switch(self, prompt: dict[str, Any]) -> float:
        """Run `prompt` next: the seconds its loads take (0 while it uses what is held)."""
        wanted = prompt_models(prompt)
        new = wanted - self.held
        self.held = wanted
        if not new:
            return 0.0
        self.loads += len(new)
        seconds = self.load_time * len(new)
        self.load_seconds += seconds
        return seconds

    def forget(self) -> None:
        """/free with unload_models, or a cleared cache: nothing is held any more."""
        self.held = frozenset()

    def state(self) -> dict[str, Any]:
        return {
            "load_time": self.load_time,
            "models_held": sorted(self.held),
            "model_loads": self.loads,
            "model_load_seconds": round(self.load_seconds, 3),
        }
