"""A worker (manage.py qcluster) told to stop ends within seconds and hands its jobs over at once.

Two workers, jobs running: SIGTERM goes to the worker whose runner follows them, either to its
whole process group (systemd's KillMode=control-group, `kill -TERM -<pgid>`) or to its master
alone (KillMode=mixed, `docker stop`, `kill <pid>`). RUNNER_STALE_AFTER is 60 s here, so jobs
taken over within seconds were handed over, not found stale. Each job ends DONE once and each
node ran each prompt once.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import psutil
import pytest

from jobs.models import Job
from tests.factories import make_workflow
from tests.harness import wait_for
from tests.integration.conftest import HttpApi
from tests.integration.test_jobs_e2e import finished, register

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOBS = 4
STOP_WITHIN = 5.0  # seconds from SIGTERM to the last process of the worker gone
ADOPTED_WITHIN = 3.0  # seconds from SIGTERM to every job followed by another runner


def tree(process) -> list[psutil.Process]:
    root = psutil.Process(process.pid)
    return [root, *root.children(recursive=True)]


def owner_worker(stack, runner_id: str) -> int:
    """Which worker (index) runs the runner `runner_id` (`<host>-<pid>-<hex>`)."""
    pid = int(runner_id.split("-")[-2])
    for index, worker in enumerate(stack.workers):
        if pid in {p.pid for p in tree(worker)}:
            return index
    raise AssertionError(f"runner {runner_id} is in no worker")


@pytest.mark.parametrize("to", ["process group", "master only"])
def test_sigterm_stops_a_worker_in_seconds_and_another_takes_its_jobs_over(stack_factory, user_factory, to):
    stack = stack_factory(
        nodes=JOBS,
        workers=2,
        node_args={"job_time": 10, "cache_none": True},
        env={"JOB_RUNNERS": 2, "RUNNER_STALE_AFTER": 60},
    )
    user_factory("alice", max_concurrent_jobs=JOBS)
    make_workflow()
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    ids = [api.submit("tiny")["id"] for _ in range(JOBS)]
    wait_for(
        lambda: Job.objects.filter(pk__in=ids, status="RUNNING", progress__gt=0).count() == JOBS,
        timeout=30,
        what="every job to run",
    )
    owners = dict(Job.objects.filter(pk__in=ids).values_list("pk", "runner_id"))
    by_runner = max(set(owners.values()), key=list(owners.values()).count)
    moved = [str(pk) for pk, runner in owners.items() if runner == by_runner]
    victim = stack.workers[owner_worker(stack, by_runner)]
    processes = tree(victim)
    assert len(processes) >= 4  # master, sentinel, pusher, monitor, workers

    started = time.monotonic()
    if to == "process group":
        os.killpg(victim.pid, signal.SIGTERM)
    else:
        os.kill(victim.pid, signal.SIGTERM)
    victim.wait(STOP_WITHIN + 5)
    _, still = psutil.wait_procs(processes, timeout=max(0.1, started + STOP_WITHIN - time.monotonic()))
    stopped_in = time.monotonic() - started
    assert not still, f"left running: {[p.pid for p in still]}"
    assert victim.returncode == 0
    assert stopped_in < STOP_WITHIN, stopped_in

    def adopted():
        now = dict(Job.objects.filter(pk__in=moved).values_list("pk", "runner_id"))
        return all(runner not in ("", by_runner) for runner in now.values())

    wait_for(adopted, timeout=30, interval=0.1, what="the jobs to be adopted")
    adopted_in = time.monotonic() - started
    print(
        f"\nSIGTERM to the {to}: worker stopped in {stopped_in:.2f} s, {len(moved)} job(s) adopted in {adopted_in:.2f} s"
    )
    assert adopted_in < ADOPTED_WITHIN, adopted_in

    for job_id in ids:
        done = finished(api, job_id, timeout=60)
        assert done["status"] == "DONE" and done["attempts"] == 0, done
        assert len(done["outputs"]) == 1
    ran = sum(len(httpx.get(node.url + "/history").json()) for node in stack.nodes)
    assert ran == JOBS, "each prompt ran once, on one node"
    log = (stack.logs / f"worker{stack.workers.index(victim)}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
