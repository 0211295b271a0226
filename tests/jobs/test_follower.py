"""One job on its node, adopted from a runner that died: the follower reconciles it with the node
(finished there → collected, never run again; accepted there but gone → requeued; never
accepted → sent)."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from jobs.follower import JobFollower
from jobs.models import Job, JobFile
from jobs.runner import Runner
from nodes.comfy.client import ComfyClient
from nodes.comfy.follow import PromptRun
from tests.conftest import make_user
from tests.factories import TINY_GRAPH, make_job, make_node, make_workflow
from workflows.prompt import validate_inputs

pytestmark = pytest.mark.django_db(transaction=True)
S = Job.Status


@sync_to_async
def orphaned_job(node_url: str, *, submitted: bool) -> Job:
    """A RUNNING job whose runner died; `submitted`: the node was seen accepting its prompt."""
    workflow = make_workflow()
    job = make_job(
        make_user(f"user-{uuid.uuid4().hex[:8]}"),
        workflow,
        inputs=validate_inputs(workflow.spec, {}),
        status=S.RUNNING,
        node=make_node(base_url=node_url),
        runner_id="runner-that-died",
        started_at=timezone.now(),
        submitted_at=timezone.now() if submitted else None,
        prompt_id=str(uuid.uuid4()),
        client_id="comfyportal-test",
    )
    return Job.objects.select_related("workflow", "node", "user").get(pk=job.pk)  # as adoption loads it


@sync_to_async
def stored(job: Job) -> tuple[Job, int]:
    return Job.objects.get(pk=job.pk), JobFile.objects.filter(job_id=job.pk, kind=JobFile.Kind.RESULT).count()


@asynccontextmanager
async def adopting_runner(monkeypatch):
    """A runner (not serving) and the prompts its followers send to nodes."""
    sent = []
    submit = ComfyClient.submit_prompt

    async def counted_submit(self, graph, **kwargs):
        sent.append(kwargs["prompt_id"])
        return await submit(self, graph, **kwargs)

    monkeypatch.setattr(ComfyClient, "submit_prompt", counted_submit)
    runner = Runner(runner_id="adopter", health=False)
    try:
        yield runner, sent
    finally:
        await runner.close()


async def test_a_job_that_finished_on_its_node_is_collected_without_running_again(make_server, monkeypatch):
    server = await make_server()
    job = await orphaned_job(server.url, submitted=True)
    async with ComfyClient(server.url) as client:  # the dead runner's run, to its end
        await PromptRun(client, TINY_GRAPH, prompt_id=job.prompt_id, client_id=job.client_id).run()
    async with adopting_runner(monkeypatch) as (runner, sent):
        await JobFollower(runner, job).run(resume=True)
    fresh, results = await stored(job)
    assert (fresh.status, results, sent) == (S.DONE, 1, [])


async def test_a_job_its_node_accepted_then_forgot_goes_back_to_the_queue(make_server, monkeypatch):
    server = await make_server()
    job = await orphaned_job(server.url, submitted=True)  # the node restarted since: it knows nothing
    async with adopting_runner(monkeypatch) as (runner, sent):
        await JobFollower(runner, job).run(resume=True)
    fresh, results = await stored(job)
    assert (fresh.status, fresh.attempts, results, sent) == (S.QUEUED, 1, 0, [])
    assert "no longer knows" in fresh.error


async def test_a_job_its_node_never_accepted_is_sent(make_server, monkeypatch):
    server = await make_server()
    job = await orphaned_job(server.url, submitted=False)  # its runner died before POST /prompt
    async with adopting_runner(monkeypatch) as (runner, sent):
        await JobFollower(runner, job).run(resume=True)
    fresh, results = await stored(job)
    assert (fresh.status, results, sent) == (S.DONE, 1, [job.prompt_id])
    assert fresh.submitted_at is not None and fresh.submitted_at != job.started_at


async def test_the_runner_learns_how_long_the_prompt_that_freed_a_slot_ran(make_server, monkeypatch):
    """What paces the refill of its slot (jobs.runner.Runner.slot_freed): the node's own
    execution time of the prompt, from its execution_start and execution_success."""
    server = await make_server(job_time=0.2)
    job = await orphaned_job(server.url, submitted=False)
    freed = []
    async with adopting_runner(monkeypatch) as (runner, _sent):
        monkeypatch.setattr(runner, "slot_freed", lambda job_id, prompt_seconds=None: freed.append(prompt_seconds))
        await JobFollower(runner, job).run(resume=True)
    assert len(freed) == 1 and 0.2 <= freed[0] < 5


async def followed_events(make_server, monkeypatch, settings, *, job_time: float, interval: float) -> list[dict]:
    """The events a follower sends for one job on a node whose prompts last `job_time`."""
    settings.PROGRESS_EVENT_INTERVAL = interval
    server = await make_server(job_time=job_time, step_time=0.0)
    job = await orphaned_job(server.url, submitted=False)
    events = []

    async def send_event(user_id, payload):
        events.append(payload)

    async with adopting_runner(monkeypatch) as (runner, _sent):
        monkeypatch.setattr(runner, "send_event", send_event)
        await JobFollower(runner, job).run(resume=True)
    assert events[-1]["status"] == S.DONE
    return events


def ticks(events: list[dict]) -> list[dict]:
    return [event for event in events if event.get("event") == "progress"]


@pytest.mark.parametrize("interval", [0, 5.0])
async def test_a_fast_job_sends_its_end_and_no_progress_tick(make_server, monkeypatch, settings, interval):
    """A 15 ms prompt's ticks (one as each node starts) would reach the user with its end.
    The gate's interval is long here so that a loaded machine cannot stretch the job past it."""
    events = await followed_events(make_server, monkeypatch, settings, job_time=0.015, interval=interval)
    if interval == 0:  # what the node says: the gate, not the node, drops them
        assert len(ticks(events)) >= 2
    else:
        assert ticks(events) == []


async def test_a_long_job_sends_paced_ticks_and_none_after_its_end(make_server, monkeypatch, settings):
    events = await followed_events(make_server, monkeypatch, settings, job_time=1.0, interval=0.25)
    progress = [event["progress"] for event in ticks(events)]
    assert 2 <= len(progress) <= 5 and progress == sorted(progress)
    assert events[-1]["status"] == S.DONE and all("status" in e for e in events)
