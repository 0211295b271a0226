"""Chaos run: the multi-instance load while nodes and a worker are killed and restarted.

    python -m bench.chaos [--jobs 300] [--users 10]

Needs PostgreSQL + Redis (BENCH_DATABASE_URL, REDIS_URL as in bench.jobs). Prints a table;
the figures go to docs/reliability.md. `run_chaos()` is also used by the test suite with a
smaller load.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, setup  # noqa: E402


class Chaos(threading.Thread):
    """Every `every` seconds: kill a random node (restarted 2 s later); every 3rd time, a worker too.

    Stops after `window` seconds, so that the run then shows the system recovering.
    """

    def __init__(self, stack, *, every: float = 3.0, window: float = 60.0, seed: int = 1):
        super().__init__(daemon=True)
        self.stack = stack
        self.every = every
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.window = window
        self.node_kills = 0
        self.worker_kills = 0

    def run(self):
        turn = 0
        ends = time.monotonic() + self.window
        while not self.stop.wait(self.every) and time.monotonic() < ends:
            turn += 1
            node = self.rng.choice(self.stack.nodes)
            node.kill()
            self.node_kills += 1
            if turn % 3 == 0:
                index = self.rng.randrange(len(self.stack.workers))
                self.stack.kill_worker(index)
                self.worker_kills += 1
                self.stack.start_worker(index)  # its workers bring runners back on their own
            if self.stop.wait(2.0):
                node.start()
                break
            node.start()
        for node in self.stack.nodes:
            if not node.alive():
                node.start()


def run_chaos(stack, *, users: list, jobs: int, every: float = 3.0, window: float = 60.0, timeout: float = 300) -> dict:
    """Submit `jobs` jobs round-robin over users and web instances under chaos; wait; report."""
    import httpx
    from django.db.models import Count

    from jobs.models import Job, JobFile

    chaos = Chaos(stack, every=every, window=window)
    chaos.start()
    started = time.monotonic()
    ids = []
    with httpx.Client(timeout=60) as client:
        for i in range(jobs):
            base = stack.web_urls[i % len(stack.web_urls)]
            user = users[i % len(users)]
            response = client.post(
                base + "/api/jobs",
                json={"workflow": "tiny", "inputs": {"prefix": f"c{i}"}},
                headers={"Authorization": f"Bearer {user.access}"},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    while Job.objects.filter(pk__in=ids, status__in=["QUEUED", "RUNNING"]).exists():
        if time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    chaos.stop.set()
    chaos.join()
    elapsed = time.monotonic() - started
    by_status = dict(Job.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id")))
    results = dict(JobFile.objects.filter(job__in=ids, kind="RESULT").values_list("job").annotate(n=Count("id")))
    errors = list(Job.objects.filter(pk__in=ids, status="ERROR").values_list("error", flat=True))
    return {
        "jobs": jobs,
        "seconds": elapsed,
        "node_kills": chaos.node_kills,
        "worker_kills": chaos.worker_kills,
        "done": by_status.get("DONE", 0),
        "error": by_status.get("ERROR", 0),
        "lost": jobs - by_status.get("DONE", 0) - by_status.get("ERROR", 0) - by_status.get("CANCELLED", 0),
        "duplicated": sum(1 for n in results.values() if n > 1),
        "done_without_result": sum(
            1
            for pk in Job.objects.filter(pk__in=ids, status="DONE").values_list("pk", flat=True)
            if results.get(pk, 0) == 0
        ),
        "errors_without_reason": sum(1 for e in errors if not e.strip()),
        "retried": Job.objects.filter(pk__in=ids, attempts__gt=0).count(),
        "error_samples": sorted({e[:120] for e in errors})[:5],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--job-time", type=float, default=0.3)
    parser.add_argument("--every", type=float, default=3.0)
    add_database_argument(parser)
    args = parser.parse_args(argv)
    setup(args.database_url)
    from accounts.models import User
    from nodes.models import ComfyNode
    from tests.factories import make_workflow
    from tests.harness import Stack
    from tests.integration.conftest import HttpApi

    for i in range(args.users):
        user = User(username=f"chaos{i}", max_concurrent_jobs=100, max_queued_jobs=10_000, daily_job_limit=100_000)
        user.set_password("chaos-password-1")
        user.save()
    make_workflow()
    with Stack(
        nodes=4,
        webs=2,
        workers=2,
        node_args={"job_time": args.job_time, "cache_none": True},
        env={"JOB_RUNNERS": 2, "LOG_LEVEL": "WARNING"},
        media_root=Path("/tmp/comfyportal-chaos-media"),
    ) as stack:
        for i, node in enumerate(stack.nodes):
            ComfyNode.objects.create(name=f"n{i}", base_url=node.url)
        users = [HttpApi(stack.web_urls[i % 2], f"chaos{i}", "chaos-password-1") for i in range(args.users)]
        report = run_chaos(stack, users=users, jobs=args.jobs, every=args.every)
    for key, value in report.items():
        print(f"| {key} | {value} |")
    return 0 if report["lost"] == 0 and report["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
