"""Issue 22: the dispatch pace never lets a node that runs fast prompts run dry.

While jobs flow, a runner's steps are at least DISPATCH_MIN_GAP apart, so that one step refills
several slots. A slot freed by a prompt that ran for `d` seconds is refilled within d/2, less
what the refill itself takes (REFILL_HEADROOM), whatever the pace: the node's next prompt,
queued behind it, takes about as long."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from jobs.runner import REFILL_WITHIN_SHARE, Runner

GAP = 0.05


@pytest.fixture
def runner():
    runner = Runner(runner_id="refill-pace", health=False)
    yield runner
    runner.executor.shutdown()


@override_settings(DISPATCH_MIN_GAP=GAP)
def test_without_a_freed_slot_the_step_keeps_the_pace(runner):
    assert runner._pause_before_step(last_claim=time.monotonic()) == pytest.approx(GAP, abs=0.005)


@override_settings(DISPATCH_MIN_GAP=GAP)
def test_a_slot_freed_by_a_fast_prompt_is_refilled_within_half_its_time(runner):
    runner.slot_freed("job-1", prompt_seconds=0.015)
    pause = runner._pause_before_step(last_claim=time.monotonic())
    assert pause <= 0.015 * REFILL_WITHIN_SHARE < GAP


@override_settings(DISPATCH_MIN_GAP=GAP)
def test_a_prompt_shorter_than_twice_the_refill_s_own_time_has_its_slot_refilled_at_once(runner):
    runner.slot_freed("job-1", prompt_seconds=0.03)  # half of it (15 ms) is less than a refill takes
    assert runner._pause_before_step(last_claim=time.monotonic()) <= 0


@override_settings(DISPATCH_MIN_GAP=0.5)
def test_a_slot_waits_half_its_prompt_less_the_refill_s_own_time(runner):
    runner.slot_freed("job-1", prompt_seconds=0.2)  # refilled within 100 - 20 ms
    assert runner._pause_before_step(last_claim=time.monotonic()) == pytest.approx(0.08, abs=0.005)


@override_settings(DISPATCH_MIN_GAP=GAP)
def test_a_slot_freed_by_a_slow_prompt_waits_for_the_pace(runner):
    runner.slot_freed("job-1", prompt_seconds=2.0)  # 1 s to spare: the pace batches the refill
    assert runner._pause_before_step(last_claim=time.monotonic()) == pytest.approx(GAP, abs=0.005)


@override_settings(DISPATCH_MIN_GAP=GAP)
def test_a_prompt_of_unknown_length_waits_for_the_pace(runner):
    runner.slot_freed("job-1", prompt_seconds=None)  # its node sent no timestamps
    assert runner.refill_by is None
    assert runner._pause_before_step(last_claim=time.monotonic()) == pytest.approx(GAP, abs=0.005)


@override_settings(DISPATCH_MIN_GAP=0.5)
def test_the_earliest_refill_wins(runner):
    runner.slot_freed("job-1", prompt_seconds=0.2)  # due in 80 ms
    runner.slot_freed("job-2", prompt_seconds=0.1)  # due in 30 ms
    runner.slot_freed("job-3", prompt_seconds=0.3)  # due in 130 ms
    assert runner._pause_before_step(last_claim=time.monotonic()) == pytest.approx(0.03, abs=0.005)
