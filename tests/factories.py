"""Rows for tests. Workflows here are tiny model-free graphs that any ComfyUI can run."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from django.db.models import QuerySet

from jobs.models import Job
from nodes.models import ComfyNode
from workflows.models import Workflow

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "workflows"
_seq = itertools.count(1)

TINY_GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "tiny"}},
}


def tiny_spec(slug: str = "tiny", version: str = "1.0.0") -> dict:
    return {
        "spec_version": "1.0",
        "slug": slug,
        "name": "Tiny",
        "version": version,
        "category": "tools",
        "description": "A solid colour, inverted.",
        "inputs": [
            {
                "id": "width",
                "label": "Width",
                "type": "int",
                "min": 8,
                "max": 512,
                "default": 64,
                "bind": [{"node": "1", "input": "width"}],
            },
            {
                "id": "color",
                "label": "Colour",
                "type": "int",
                "min": 0,
                "max": 16777215,
                "default": 16711680,
                "bind": [{"node": "1", "input": "color"}],
            },
            {
                "id": "prefix",
                "label": "Prefix",
                "type": "text",
                "default": "tiny",
                "max_length": 40,
                "bind": [{"node": "3", "input": "filename_prefix"}],
            },
        ],
        "outputs": [{"node": "3", "type": "image"}],
    }


def make_workflow(slug: str = "tiny", *, class_types: list[str] | None = None, **fields) -> Workflow:
    spec = tiny_spec(slug)
    return Workflow.objects.create(
        slug=slug,
        name=spec["name"],
        version=fields.pop("version", "1.0.0"),
        category="tools",
        graph=TINY_GRAPH,
        spec=spec,
        class_types=class_types or ["EmptyImage", "ImageInvert", "SaveImage"],
        combo_inputs=fields.pop("combo_inputs", []),
        **fields,
    )


def upload_example(slug: str, user=None) -> Workflow:
    from workflows.services import upload_workflow

    folder = EXAMPLES / slug
    return upload_workflow(
        workflow_raw=(folder / "workflow.json").read_bytes(), spec_raw=(folder / "spec.json").read_bytes(), user=user
    )


def make_node(name: str | None = None, *, class_types: list[str] | None = None, **fields) -> ComfyNode:
    n = next(_seq)
    defaults = {
        "name": name or f"node{n}",
        "base_url": f"http://127.0.0.1:{9000 + n}",
        "status": "ONLINE",
        "class_types": class_types if class_types is not None else ["EmptyImage", "ImageInvert", "SaveImage"],
    }
    defaults.update(fields)
    return ComfyNode.objects.create(**defaults)


def change_row_elsewhere(model, pk, **fields) -> None:
    """Change a row in the database only, as another process does: this process hears nothing
    (a plain QuerySet, without the model's own that announces bulk changes)."""
    QuerySet(model).filter(pk=pk).update(**fields)


def make_job(user, workflow, **fields) -> Job:
    return Job.objects.create(user=user, workflow=workflow, inputs=fields.pop("inputs", {}), **fields)


def example_json(slug: str, name: str) -> dict:
    return json.loads((EXAMPLES / slug / name).read_text())
