"""Dispatch step cost as a deployment ages: does a step stay cheap with months of past jobs?

    python -m bench.dispatch [--past 0,300000] [--steps 50]

For each history size: a fresh PostgreSQL database, 10 users whose past jobs (DONE) spread
over 30 days (a tenth of them today), 32 ONLINE nodes with max_queue 2, 2000 queued jobs.
Each measured step frees 6 slots (6 running jobs end) and dispatches into them, as the
runner does while a pool is busy. Prints wall and CPU time per step and its slowest query.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, setup  # noqa: E402

USERS, NODES, FREED_PER_STEP = 10, 32, 6


def seed(past_jobs: int):
    from django.db import connection

    from accounts.models import User
    from jobs.models import Job
    from nodes.models import ComfyNode
    from tests.factories import TINY_GRAPH, tiny_spec
    from workflows.models import Workflow

    workflow = Workflow.objects.create(
        slug="bench", name="Bench", version="1.0.0", graph=TINY_GRAPH, spec=tiny_spec("bench"), class_types=[]
    )
    users = [
        User.objects.create(
            username=f"user{i}", max_concurrent_jobs=10_000, max_queued_jobs=10**6, daily_job_limit=10**7
        )
        for i in range(USERS)
    ]
    if past_jobs:
        seconds_apart = 30 * 86400 / past_jobs  # a month of history
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {Job._meta.db_table} (id, user_id, workflow_id, status, inputs, prompt_id, client_id,
                      progress, progress_text, error, attempts, priority, cancel_requested, runner_id,
                      created_at, started_at, finished_at)
                    SELECT gen_random_uuid(), %s + (g %% %s), %s, 'DONE', '{{}}', '', '', 1, '', '', 0, 0, false, '',
                           now() - g * %s * interval '1 second', now() - g * %s * interval '1 second',
                           now() - g * %s * interval '1 second'
                    FROM generate_series(1, %s) AS g""",
                [users[0].pk, USERS, workflow.pk, seconds_apart, seconds_apart, seconds_apart, past_jobs],
            )
            cursor.execute(f"ANALYZE {Job._meta.db_table}")
    for i in range(NODES):
        ComfyNode.objects.create(
            name=f"gpu{i:02d}", base_url=f"http://127.0.0.1:{9000 + i}", max_queue=2, status="ONLINE", class_types=[]
        )
    Job.objects.bulk_create([Job(user=users[i % USERS], workflow=workflow, inputs={}) for i in range(2000)])


def step():
    from jobs.models import Job
    from jobs.scheduler import dispatch

    running = list(Job.objects.filter(status="RUNNING").values_list("pk", flat=True)[:FREED_PER_STEP])
    Job.objects.filter(pk__in=running).update(status="DONE")
    return dispatch(runner_id="bench")


def measure(past_jobs: int, steps: int, database_url: str) -> dict:
    from django.db import connection

    from bench.common import prepare_database

    connection.close()
    if hasattr(connection, "close_pool"):  # the pooled connections would die with the old database
        connection.close_pool()
    prepare_database(database_url)
    seed(past_jobs)
    step()  # fill every slot
    for _ in range(5):
        step()
    queries: dict[str, float] = collections.defaultdict(float)

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries[" ".join(sql.split())[:70]] += time.perf_counter() - started

    wall, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(timed):
        claimed = sum(len(step().jobs) for _ in range(steps))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    slowest, slowest_time = max(queries.items(), key=lambda item: item[1])
    return {
        "past": past_jobs,
        "wall": wall / steps,
        "cpu": cpu / steps,
        "claimed": claimed / steps,
        "slowest": slowest,
        "slowest_time": slowest_time / steps,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--past", default="0,300000", help="history sizes to measure, comma-separated")
    parser.add_argument("--steps", type=int, default=50)
    add_database_argument(parser)
    args = parser.parse_args(argv)
    setup(args.database_url)
    rows = [measure(int(n), args.steps, args.database_url) for n in args.past.split(",")]
    print("| past jobs | step wall | step CPU (this process) | jobs per step | slowest query (time per step) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['past']:,} | {r['wall'] * 1000:.1f} ms | {r['cpu'] * 1000:.1f} ms | {r['claimed']:.0f} | "
            f"`{r['slowest']}…` ({r['slowest_time'] * 1000:.1f} ms) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
