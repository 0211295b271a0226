"""GPU seconds come from the node's own execution_start → end, for the attempt that ended the job."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from jobs.follower import JobFollower
from jobs.models import FailedAttempt, Job
from nodes.comfy.client import ComfyClient
from nodes.comfy.follow import PromptRun
from tests.factories import TINY_GRAPH
from tests.jobs.test_follower import adopting_runner, orphaned_job, stored

S = Job.Status
PROMPT_1, PROMPT_2 = "0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7"


async def test_the_nodes_execution_time_is_read_from_its_socket(make_server):
    server = await make_server(job_time=0.4)
    async with ComfyClient(server.url) as client:
        run = PromptRun(client, TINY_GRAPH, prompt_id=PROMPT_1, client_id="c-1")
        await run.run()
    assert 0.4 <= run.execution_seconds < 1.5


async def test_a_resumed_prompt_reads_it_from_the_history(make_server):
    server = await make_server(job_time=0.3)
    async with ComfyClient(server.url) as client:
        await PromptRun(client, TINY_GRAPH, prompt_id=PROMPT_2, client_id="c-2").run()
        resumed = PromptRun(client, TINY_GRAPH, prompt_id=PROMPT_2, client_id="c-3")
        await resumed.resume()
    assert 0.3 <= resumed.execution_seconds < 1.5


def test_no_timestamps_no_figure():
    run = PromptRun(None, {}, prompt_id="p", client_id="c")
    run._finish({"status": {"status_str": "success", "messages": [["execution_start", {"timestamp": "x"}]]}})
    assert run.execution_seconds is None


@pytest.mark.django_db(transaction=True)
async def test_a_finished_job_records_gpu_time_queue_wait_and_outputs(make_server, monkeypatch):
    server = await make_server(job_time=0.3)
    job = await orphaned_job(server.url, submitted=False)
    async with adopting_runner(monkeypatch) as (runner, _):
        await JobFollower(runner, job).run(resume=True)
    fresh, results = await stored(job)
    assert fresh.status == S.DONE and results == 1
    assert 0.3 <= fresh.gpu_seconds < 1.5
    assert fresh.queue_seconds is not None and fresh.queue_seconds >= 0
    assert fresh.output_count == 1 and fresh.output_bytes > 0


@pytest.mark.django_db(transaction=True)
async def test_a_failed_over_job_counts_only_its_last_attempt(make_server, monkeypatch):
    """The first node forgets the prompt (restarted): that attempt is listed apart, not billed."""
    dead = await make_server()
    job = await orphaned_job(dead.url, submitted=True)
    async with adopting_runner(monkeypatch) as (runner, _):
        await JobFollower(runner, job).run(resume=True)
    requeued, _ = await stored(job)
    assert requeued.status == S.QUEUED and requeued.gpu_seconds is None

    [attempt] = await sync_to_async(lambda: list(FailedAttempt.objects.filter(job=job)))()
    assert attempt.number == 1 and "no longer knows" in attempt.reason
    assert attempt.node_name == job.node.name

    good = await make_server(job_time=0.3)
    rerun = await sync_to_async(_claim_again)(job.pk, good.url)
    async with adopting_runner(monkeypatch) as (runner, _):
        await JobFollower(runner, rerun).run(resume=False)
    fresh, results = await stored(job)
    assert (fresh.status, fresh.attempts, results) == (S.DONE, 1, 1)
    assert 0.3 <= fresh.gpu_seconds < 1.5


def _claim_again(job_id, url) -> Job:
    import uuid

    from django.utils import timezone

    from jobs import lifecycle
    from tests.factories import make_node

    node = make_node(base_url=url)
    lifecycle.claim({job_id: (node.pk, str(uuid.uuid4()), "comfyportal-test")}, runner_id="adopter", now=timezone.now())
    return Job.objects.select_related("workflow", "node", "user").get(pk=job_id)
