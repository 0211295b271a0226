"""Fixtures for the pure workflow modules: bundled examples and a small known-good pair."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples/workflows"


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if (p / "workflow.json").exists())


def load_example(slug: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (graph, spec) of a bundled example, freshly parsed."""
    folder = EXAMPLES / slug
    graph = json.loads((folder / "workflow.json").read_text(encoding="utf-8"))
    spec = json.loads((folder / "spec.json").read_text(encoding="utf-8"))
    return graph, spec


@pytest.fixture
def txt2img() -> tuple[dict[str, Any], dict[str, Any]]:
    return load_example("sd15-txt2img")


@pytest.fixture
def inpaint() -> tuple[dict[str, Any], dict[str, Any]]:
    return load_example("sd15-inpaint")


def clone(obj: Any) -> Any:
    return copy.deepcopy(obj)


def english_only(spec: dict[str, Any]) -> dict[str, Any]:
    """A bundled spec with its texts by language replaced by the English ones (what a spec older
    than 1.2 says), choice labels dropped."""
    spec = copy.deepcopy(spec)

    def plain(text: Any) -> Any:
        return text["en"] if isinstance(text, dict) else text

    for key in ("name", "category", "description"):
        if key in spec:
            spec[key] = plain(spec[key])
    for field in spec.get("inputs", []):
        for key in ("label", "help", "placeholder"):
            if key in field:
                field[key] = plain(field[key])
        field.pop("choice_labels", None)
    return spec
