from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSWORD, make_user
from tests.harness import Stack


@pytest.fixture
def stack_factory(transactional_db, tmp_path):
    stacks = []

    def start(**kwargs) -> Stack:
        stack = Stack(media_root=tmp_path / "media", **kwargs)
        stacks.append(stack)
        return stack.__enter__()

    yield start
    for stack in stacks:
        stack.__exit__(None, None, None)


class HttpApi:
    """A user of a running web instance, over real HTTP."""

    def __init__(self, base_url: str, username: str, password: str = PASSWORD):
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)
        tokens = self.http.post("/api/auth/token", json={"username": username, "password": password}).json()
        self.access = tokens["access"]
        self.http.headers["Authorization"] = f"Bearer {self.access}"

    def submit(self, workflow: str, inputs: dict | None = None) -> dict:
        response = self.http.post("/api/jobs", json={"workflow": workflow, "inputs": inputs or {}})
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        return self.http.get(f"/api/jobs/{job_id}").json()

    def upload(self, data: bytes, kind: str = "image") -> str:
        response = self.http.post("/api/uploads", files={"file": ("x.png", data, "image/png")}, data={"kind": kind})
        assert response.status_code == 201, response.text
        return response.json()["id"]


@pytest.fixture
def user_factory(transactional_db):
    return make_user


def start_pool(stack_factory, *, users: int, job_time: float):
    """2 web + 2 worker instances, 4 nodes, the tiny workflow, and `users` users named user0…"""
    from nodes.models import ComfyNode
    from tests.factories import make_workflow

    stack = stack_factory(
        nodes=4, webs=2, workers=2, node_args={"job_time": job_time, "cache_none": True}, env={"JOB_RUNNERS": 2}
    )
    for i in range(users):
        make_user(f"user{i}", max_concurrent_jobs=100)
    make_workflow()
    for i, node in enumerate(stack.nodes):
        ComfyNode.objects.create(name=f"n{i}", base_url=node.url)
    return stack
