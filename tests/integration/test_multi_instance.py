"""Growth: 2 web + 2 worker instances, 4 nodes, 300 jobs from 10 users through both webs."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from django.db.models import Count

from jobs.models import Job
from tests.integration.conftest import HttpApi, start_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_webs_two_workers_300_jobs_exactly_once(stack_factory):
    stack = start_pool(stack_factory, users=10, job_time=0.2)
    web_a, web_b = stack.web_urls
    users = [HttpApi(web_a if i % 2 else web_b, f"user{i}") for i in range(10)]
    watcher = users[0]  # watches on instance A, submits through instance B
    seen: dict[str, set] = {"progress": set(), "done": set()}

    async def watch(stop: asyncio.Event):
        url = web_a.replace("http", "ws") + f"/ws/jobs/?token={watcher.access}"
        async with websockets.connect(url) as socket:
            while not stop.is_set():
                try:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
                except TimeoutError:
                    continue
                job = message.get("job") or {}
                if job.get("event") == "progress":
                    seen["progress"].add(job["id"])
                if job.get("status") == "DONE":
                    seen["done"].add(job["id"])

    async def submit_all() -> list[str]:
        async with httpx.AsyncClient(timeout=60) as client:

            async def submit(i: int) -> str:
                api = users[i % 10]
                base = web_b if i % 10 == 0 else (web_a if i % 2 else web_b)
                response = await client.post(
                    base + "/api/jobs",
                    json={"workflow": "tiny", "inputs": {"prefix": f"m{i}"}},
                    headers={"Authorization": f"Bearer {api.access}"},
                )
                assert response.status_code == 201, response.text
                return response.json()["id"]

            ids = []
            for start in range(0, 300, 20):
                ids += await asyncio.gather(*(submit(i) for i in range(start, start + 20)))
            return ids

    async def main():
        stop = asyncio.Event()
        listener = asyncio.create_task(watch(stop))
        await asyncio.sleep(0.5)
        ids = await submit_all()
        deadline = time.monotonic() + 180
        while await asyncio.to_thread(lambda: Job.objects.filter(status__in=["QUEUED", "RUNNING"]).count()):
            assert time.monotonic() < deadline, "jobs did not finish in time"
            await asyncio.sleep(0.3)
        await asyncio.sleep(1)
        stop.set()
        await listener
        return ids

    ids = asyncio.run(main())
    assert len(set(ids)) == 300
    assert dict(Job.objects.values_list("status").annotate(n=Count("id"))) == {"DONE": 300}
    # Exactly once: every node ran each of its prompts once, and all prompts are ours.
    executed = []
    for node in stack.nodes:
        executed += list(httpx.get(node.url + "/history").json())
    assert sorted(executed) == sorted(Job.objects.values_list("prompt_id", flat=True))
    assert all(job.files.count() == 1 for job in Job.objects.prefetch_related("files"))
    # User 0 submitted through B and watched on A: A's socket saw its jobs' progress and ends.
    user0_jobs = {str(pk) for pk in Job.objects.filter(user__username="user0").values_list("pk", flat=True)}
    assert user0_jobs <= seen["done"]
    assert seen["progress"] & user0_jobs
    used_nodes = set(Job.objects.values_list("node__name", flat=True))
    assert used_nodes == {"n0", "n1", "n2", "n3"}
