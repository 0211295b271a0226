"""The runner's dispatch loop: wake-ups are never lost, steps are paced only while jobs flow,
and the "all slots full" flag that lets submitters skip wake-ups is never set on a guess."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.redis_client import shared_redis
from jobs import runner as runner_module
from jobs.notify import NODES_FULL_KEY, WAKE_KEY
from jobs.runner import Runner
from jobs.scheduler import Dispatched


async def serve_with_steps(settings, outcome, *, seconds: float) -> list[float]:
    """Run a runner whose dispatch step is `outcome(runner, step_number)` → jobs claimed;
    return when each step started (seconds from the start)."""
    settings.DISPATCH_TICK = 5.0  # anything quicker than this was a wake-up, not the tick
    shared_redis().delete(WAKE_KEY)  # wake-ups other tests left for a runner
    runner = Runner(health=False)
    started, stop = time.monotonic(), asyncio.Event()
    steps: list[float] = []

    async def step():
        steps.append(time.monotonic() - started)
        return outcome(runner, len(steps))

    runner.step = step
    stopper = asyncio.get_running_loop().call_later(seconds, lambda: (stop.set(), runner.wake.set()))
    try:
        await asyncio.wait_for(runner.serve(stop=stop), seconds + 10)
    finally:
        stopper.cancel()
    return steps


async def test_a_wake_up_during_a_step_starts_another_step_at_once(settings):
    def outcome(runner, n):
        if n == 1:
            runner.wake.set()  # a job ended on its node while this step queried the database
        return 0

    steps = await serve_with_steps(settings, outcome, seconds=1.0)
    assert len(steps) == 2 and steps[1] - steps[0] < 0.5  # not left for the 5-second tick


async def test_steps_are_paced_while_they_claim_jobs_and_immediate_when_idle(settings):
    settings.DISPATCH_MIN_GAP = 0.2

    def busy(runner, n):
        runner.wake.set()  # every step is followed by another wake-up (a submit, a job ending)
        return 1

    steps = await serve_with_steps(settings, busy, seconds=1.0)
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert 3 <= len(steps) <= 6 and min(gaps) >= 0.19

    def idle(runner, n):
        runner.wake.set()
        return 0  # nothing to claim: the next wake-up must not wait for the gap

    steps = await serve_with_steps(settings, idle, seconds=0.5)
    assert len(steps) > 20


async def test_a_slot_freed_during_the_pace_is_refilled_by_its_due_time_not_the_pace(settings):
    settings.DISPATCH_MIN_GAP = 0.5

    def outcome(runner, n):
        if n == 1:
            runner.wake.set()  # a submit: the next step waits for the pace...
            # ...but 50 ms into that wait a node finishes a 20 ms prompt: its slot is due at once
            asyncio.get_running_loop().call_later(0.05, runner.slot_freed, "job-1", 0.02)
            return 1
        return 0

    steps = await serve_with_steps(settings, outcome, seconds=1.0)
    assert len(steps) >= 2 and steps[1] - steps[0] < 0.25  # not the 0.5 s pace


@pytest.mark.parametrize(
    ("dispatched", "flag_before", "flag_after"),
    [
        (Dispatched([], 0, nodes_seen=3), None, b"me"),  # every node seen, none free: full
        (Dispatched([], 0, nodes_seen=0), None, None),  # a peer held every node: no verdict
        (Dispatched([], 2, nodes_seen=3), b"peer", None),  # free slots: clear a peer's flag too
    ],
)
async def test_the_full_flag_follows_what_a_step_saw(monkeypatch, dispatched, flag_before, flag_after):
    import redis.asyncio as aioredis
    from django.conf import settings

    client = shared_redis()
    client.delete(NODES_FULL_KEY)
    if flag_before:
        client.set(NODES_FULL_KEY, flag_before, ex=2)
    monkeypatch.setattr(runner_module, "dispatch", lambda **kwargs: dispatched)
    runner = Runner(runner_id="me", health=False)
    runner._redis = aioredis.Redis.from_url(settings.REDIS_URL)
    runner._chores = lambda: asyncio.sleep(0)  # heartbeats and adoption are not this test's business
    try:
        await runner.step()
        assert client.get(NODES_FULL_KEY) == flag_after
    finally:
        client.delete(NODES_FULL_KEY)
        await runner._redis.aclose()
        runner.executor.shutdown()


async def test_a_step_that_found_every_node_held_by_a_peer_looks_again_soon(settings, monkeypatch):
    settings.DISPATCH_MIN_GAP = 0.05
    outcomes = iter([Dispatched([], 0, nodes_seen=0, contended=True)])
    monkeypatch.setattr(runner_module, "dispatch", lambda **kwargs: next(outcomes, Dispatched([], 2, nodes_seen=2)))

    settings.DISPATCH_TICK = 5.0
    shared_redis().delete(WAKE_KEY, NODES_FULL_KEY)
    runner = Runner(health=False)
    runner._chores = lambda: asyncio.sleep(0)
    steps: list[float] = []
    own_step = runner.step

    async def counted_step():
        steps.append(time.monotonic())
        return await own_step()

    runner.step = counted_step
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.6, lambda: (stop.set(), runner.wake.set()))
    await asyncio.wait_for(runner.serve(stop=stop), 10)
    assert len(steps) >= 2 and steps[1] - steps[0] < 0.3  # not the 5-second tick
