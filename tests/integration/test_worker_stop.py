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


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
    victim_index = owner_worker(stack, by_runner)
    victim = stack.workers[victim_index]
    gone = {runner for runner in owners.values() if owner_worker(stack, runner) == victim_index}
    moved = [str(pk) for pk, runner in owners.items() if runner in gone]  # its runners' jobs (one or two)
    processes = tree(victim)
    assert len(processes) >= 4  # master, sentinel, pusher, monitor, workers

    def adopted():
        now = dict(Job.objects.filter(pk__in=moved).values_list("pk", "runner_id"))
        return all(runner and runner not in gone for runner in now.values())

    started = time.monotonic()
    if to == "process group":
        os.killpg(victim.pid, signal.SIGTERM)
    else:
        os.kill(victim.pid, signal.SIGTERM)
    stopped_in = adopted_in = None
    while (stopped_in is None or adopted_in is None) and time.monotonic() - started < 30:
        if adopted_in is None and adopted():
            adopted_in = time.monotonic() - started
        if stopped_in is None and not [p for p in processes if running(p)]:
            stopped_in = time.monotonic() - started
        time.sleep(0.05)
    print(
        f"\nSIGTERM to the {to}: worker stopped in {stopped_in or -1:.2f} s, {len(moved)} job(s) adopted in {adopted_in or -1:.2f} s"
    )
    assert stopped_in is not None and stopped_in < STOP_WITHIN, [p.pid for p in processes if running(p)]
    assert victim.wait(5) == 0
    assert adopted_in is not None and adopted_in < ADOPTED_WITHIN, adopted_in

    for job_id in ids:
        done = finished(api, job_id, timeout=60)
        assert done["status"] == "DONE" and done["attempts"] == 0, done
        assert len(done["outputs"]) == 1
    ran = sum(len(httpx.get(node.url + "/history").json()) for node in stack.nodes)
    assert ran == JOBS, "each prompt ran once, on one node"
    log = (stack.logs / f"worker{stack.workers.index(victim)}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
