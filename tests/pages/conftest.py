"""Fixtures for the page tests: logged-in clients, workflows, jobs and result files."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from PIL import Image

from tests.conftest import PASSWORD
from tests.factories import TINY_GRAPH, tiny_spec, upload_example
from workflows.models import Workflow


def png_bytes(size=(64, 48), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def alice_client(alice):
    return logged_in(alice)


@pytest.fixture
def bob_client(bob):
    return logged_in(bob)


@pytest.fixture
def admin_client_(admin_user):
    return logged_in(admin_user)


@pytest.fixture
def filters(db) -> Workflow:
    """The model-free example: an image and four number fields (three sliders)."""
    return upload_example("image-filters")


@pytest.fixture
def txt2img(db) -> Workflow:
    return upload_example("sd15-txt2img")


def all_widgets_spec() -> dict:
    """A spec with one field of every widget (not run, only rendered and validated)."""
    spec = tiny_spec("every-widget")
    spec["name"] = "Every widget"
    spec["inputs"] = [
        {
            "id": "prompt",
            "label": "Prompt",
            "type": "text",
            "multiline": True,
            "required": True,
            "max_length": 200,
            "bind": [{"node": "3", "input": "filename_prefix"}],
        },
        {
            "id": "title",
            "label": "Title",
            "type": "text",
            "default": "hi",
            "bind": [{"node": "3", "input": "filename_prefix"}],
        },
        {
            "id": "width",
            "label": "Width",
            "type": "int",
            "min": 8,
            "max": 512,
            "step": 8,
            "default": 64,
            "bind": [{"node": "1", "input": "width"}],
        },
        {
            "id": "strength",
            "label": "Strength",
            "type": "float",
            "min": 0.0,
            "max": 1.0,
            "step": 0.05,
            "default": 0.5,
            "widget": "slider",
            "bind": [{"node": "1", "input": "height"}],
        },
        {
            "id": "flip",
            "label": "Flip",
            "type": "bool",
            "default": True,
            "bind": [{"node": "1", "input": "batch_size"}],
        },
        {
            "id": "mode",
            "label": "Mode",
            "type": "choice",
            "choices": ["fast", "slow"],
            "default": "fast",
            "bind": [{"node": "3", "input": "filename_prefix"}],
        },
        {"id": "seed", "label": "Seed", "type": "seed", "default": -1, "bind": [{"node": "1", "input": "color"}]},
        {
            "id": "image",
            "label": "Picture",
            "type": "image",
            "required": False,
            "bind": [{"node": "1", "input": "width"}],
        },
        {
            "id": "mask",
            "label": "Area",
            "type": "mask",
            "for_image": "image",
            "required": False,
            "bind": [{"node": "1", "input": "height"}],
        },
    ]
    return spec


@pytest.fixture
def every_widget(db) -> Workflow:
    spec = all_widgets_spec()
    return Workflow.objects.create(
        slug=spec["slug"],
        name=spec["name"],
        version="1.0.0",
        category="tests",
        graph=TINY_GRAPH,
        spec=spec,
        class_types=["EmptyImage", "ImageInvert", "SaveImage"],
        requires_mask=True,
    )


@pytest.fixture
def tiny(db) -> Workflow:
    spec = tiny_spec("tiny")
    return Workflow.objects.create(
        slug="tiny",
        name="Tiny",
        version="1.0.0",
        category="tools",
        graph=TINY_GRAPH,
        spec=spec,
        class_types=["EmptyImage", "ImageInvert", "SaveImage"],
    )


def result_file(job, *, color=(10, 200, 10), ref="out.png"):
    from jobs.files import store_result

    return store_result(job=job, data=png_bytes(color=color), source_ref=ref)
