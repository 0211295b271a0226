"""A stopping runner hands its jobs over: they become nobody's, the other runners hear of it at
their next beat and adopt them at once (no wait for RUNNER_STALE_AFTER). The process-level
behaviour (SIGTERM to a real worker) is tests/integration/test_worker_stop.py."""

from __future__ import annotations

import asyncio

import pytest
from django.utils import timezone

from core.redis_client import shared_redis
from jobs import steps, supervision
from jobs.models import Job
from jobs.runner import Runner
from jobs.supervision import HANDOVER_KEY
from tests.factories import make_job, make_node, make_workflow

S = Job.Status


def running_job(user, runner_id: str) -> Job:
    from workflows.models import Workflow

    return make_job(
        user,
        Workflow.objects.filter(slug="tiny").first() or make_workflow(),
        status=S.RUNNING,
        node=make_node(),
        started_at=timezone.now(),
        runner_id=runner_id,
        heartbeat_at=timezone.now(),  # fresh: never adopted as stale
    )


@pytest.mark.django_db
def test_released_jobs_are_adopted_at_once_despite_a_fresh_heartbeat(alice, settings):
    settings.RUNNER_STALE_AFTER = 600
    job = running_job(alice, "runner-a")
    other = running_job(alice, "runner-c")
    assert steps.adopt_stale_jobs(runner_id="runner-b") == []
    assert steps.release_jobs(runner_id="runner-a") == 1
    assert [j.pk for j in steps.adopt_stale_jobs(runner_id="runner-b")] == [job.pk]
    assert steps.adopt_stale_jobs(runner_id="runner-d") == []  # once only
    job.refresh_from_db()
    other.refresh_from_db()
    assert job.runner_id == "runner-b" and job.status == S.RUNNING
    assert other.runner_id == "runner-c", "another runner's jobs are not touched"


@pytest.mark.django_db(transaction=True)
async def test_hand_over_now_stops_following_and_makes_the_jobs_nobodys(alice, settings):
    settings.DISPATCH_TICK = 5.0
    runner = Runner(health=False)
    job = await asyncio.to_thread(running_job, alice, runner.id)
    shared_redis().delete(HANDOVER_KEY)

    async def follow_for_ever():
        await asyncio.sleep(3600)

    async def step():
        if str(job.pk) not in runner.tasks:
            runner.tasks[str(job.pk)] = asyncio.create_task(follow_for_ever())
        return 0

    runner.step = step
    serving = asyncio.create_task(runner.serve())
    await asyncio.sleep(0.3)
    following = runner.tasks[str(job.pk)]
    runner.hand_over_now()
    await asyncio.wait_for(serving, 10)  # at once, not at the end of a lease or of the job
    assert following.cancelled()
    await asyncio.to_thread(job.refresh_from_db)
    assert job.status == S.RUNNING and job.runner_id == ""
    assert shared_redis().get(HANDOVER_KEY) is not None

    peer = Runner(health=False)
    peer._redis = runner._redis.__class__.from_url(settings.REDIS_URL)
    try:
        assert await peer._jobs_handed_over()  # heard at its next beat…
        assert not await peer._jobs_handed_over()  # …once
    finally:
        await peer._redis.aclose()
        peer.executor.shutdown(wait=False)


async def test_a_runner_sees_its_cluster_stopping_within_a_tenth_of_a_second(monkeypatch):
    runner = Runner(health=False)
    monkeypatch.setattr("jobs.runner.cluster_stopping", lambda: True)
    await asyncio.wait_for(runner._watch_cluster_stop(), 1)
    assert runner.handing_over and runner.stopping.is_set()
    runner.executor.shutdown(wait=False)


def test_the_cluster_stopping_flag_is_shared_memory_seen_by_forked_processes():
    import multiprocessing

    flag = supervision._cluster_stopping
    assert isinstance(flag, type(multiprocessing.RawValue("b", 0)))
    previous = flag.value
    try:
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=supervision.set_cluster_stopping)
        child.start()
        child.join(10)
        assert supervision.cluster_stopping(), "set in a forked child, seen here"
    finally:
        flag.value = previous
