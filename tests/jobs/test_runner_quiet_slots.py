"""Issue 22: when jobs come one at a time, a node finishing a prompt costs no dispatch step.

The step that claimed the job saw nothing else queued, and no submit woke the runner since:
a step then would find nothing. It still runs when something may wait: a submit came, the
last step left jobs queued, or the nodes were full (submits then wake nobody)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from jobs.notify import NODES_FULL_KEY
from jobs.runner import Runner


@pytest.fixture
async def runner():
    runner = Runner(runner_id="quiet-slots", health=False)
    runner._redis = aioredis.Redis.from_url(settings.REDIS_URL)
    await runner._redis.delete(NODES_FULL_KEY)
    yield runner
    await runner._redis.delete(NODES_FULL_KEY)
    await runner._redis.aclose()
    runner.executor.shutdown()


async def woken_by_slot_freed(runner: Runner, *, queue_empty: bool) -> bool:
    runner.queue_empty = queue_empty
    runner.wake.clear()
    runner.slot_freed("job-1")
    await asyncio.sleep(0.05)  # the flag check, when there is one, is a Redis round trip
    return runner.wake.is_set()


async def test_a_slot_freed_with_nothing_queued_wakes_no_step(runner):
    assert await woken_by_slot_freed(runner, queue_empty=True) is False
    assert runner.node_finished == ["job-1"]  # recorded by the next step, whenever it runs…
    runner.forget("job-1")
    assert runner.node_finished == []  # …or by the job's ending (steps.finish_and_present)


async def test_a_slot_freed_while_jobs_may_wait_wakes_a_step(runner):
    assert await woken_by_slot_freed(runner, queue_empty=False) is True


async def test_a_slot_freed_after_the_nodes_were_full_wakes_a_step(runner):
    await runner._redis.set(NODES_FULL_KEY, "another-runner", ex=2)  # submits since woke nobody
    assert await woken_by_slot_freed(runner, queue_empty=True) is True
