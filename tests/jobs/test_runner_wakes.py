"""Issue 22: a job ending after its node finished does not cost another dispatch step (the
node's finishing woke one already); one ending otherwise still wakes dispatch at once."""

from __future__ import annotations

from jobs.runner import Runner


def ended(runner: Runner, job_id: str, *, node_finished: bool) -> bool:
    task = object()
    runner.tasks[job_id] = task
    if node_finished:
        runner.slot_freed(job_id)
    runner.wake.clear()  # the step the node's finishing asked for has run
    runner._done(job_id, task)
    return runner.wake.is_set()


def test_a_job_ending_after_its_node_finished_wakes_no_second_step():
    runner = Runner(runner_id="wakes", health=False)
    assert ended(runner, "a", node_finished=True) is False
    assert runner.slots_freed == set()


def test_a_job_ending_without_its_node_finishing_wakes_dispatch():
    runner = Runner(runner_id="wakes", health=False)
    assert ended(runner, "b", node_finished=False) is True  # failed, requeued, cancelled…


def test_a_runner_at_its_job_limit_wakes_dispatch_when_one_ends():
    runner = Runner(runner_id="wakes", health=False, max_jobs=1)
    assert ended(runner, "c", node_finished=True) is True
