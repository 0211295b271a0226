"""Model benchmark: do the GPUs spend their time generating, not loading models?

K=8 test ComfyUI nodes: three checkpoints on every node, a fourth on two nodes only. Loading a
checkpoint the node does not hold takes LOAD seconds (simulated by the test node), a job JOB
seconds. N=400 jobs from 4 users with mixed models go through the HTTP API to the real web and
worker processes (PostgreSQL + Redis), once with model affinity on and once off, in the same
run. Reported per run: model loads, wall time, useful utilization (job time ÷ (wall × K): load
time and idle time count as waste) and the p95 wait per model (submitted → sent to a node).
Times are simulated seconds (sleeps on the test nodes), so the figures depend little on the
machine's speed. Run with `make bench` or `python -m comfyportal.embedded -- python -m bench.models`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, runs_table, setup  # noqa: E402
from bench.jobs import PASSWORD, percentile, production_env  # noqa: E402

COMMON = ["m1.safetensors", "m2.safetensors", "m3.safetensors"]
RARE = "m4.safetensors"  # on two nodes only
MIX = {"m1.safetensors": 0.30, "m2.safetensors": 0.30, "m3.safetensors": 0.25, RARE: 0.15}

GRAPH = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m1.safetensors"}},
    "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "bench"}},
}
SPEC = {
    "spec_version": "1.1",
    "slug": "bench-models",
    "name": "Bench (models)",
    "version": "1.0.0",
    "inputs": [
        {
            "id": "model",
            "label": "Model",
            "type": "choice",
            "choices_from": "checkpoints",
            "bind": [{"node": "1", "input": "ckpt_name"}],
        },
        {"id": "prefix", "label": "Prefix", "type": "text", "bind": [{"node": "4", "input": "filename_prefix"}]},
    ],
    "outputs": [{"node": "4"}],
}


async def submit_all(url: str, tokens: list[str], models: list[str], concurrency: int = 8) -> list[str]:
    import aiohttp

    ids: list[str] = []
    queue = list(range(len(models)))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker():
            while queue:
                i = queue.pop(0)
                async with session.post(
                    url + "/api/jobs",
                    json={"workflow": "bench-models", "inputs": {"model": models[i], "prefix": f"b{i}"}},
                    headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                ) as response:
                    body = await response.read()
                    if response.status != 201:
                        raise RuntimeError(f"submit failed: {response.status} {body[:300]!r}")
                    ids.append(json.loads(body)["id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def run(*, affinity: bool, nodes: int, jobs: int, users: int, load_time: float, job_time: float, seed: int) -> dict:
    import httpx

    from accounts.models import User
    from jobs.models import Job
    from nodes.models import ComfyNode
    from testcomfy.process import spawn_group
    from tests.harness import Stack, reset_redis
    from workflows.models import Workflow
    from workflows.services import upload_workflow

    Job.objects.all().delete()
    Workflow.objects.all().delete()
    ComfyNode.objects.all().delete()
    User.objects.all().delete()
    for i in range(users):
        user = User(username=f"bench{i}", max_concurrent_jobs=10_000, max_queued_jobs=100_000, daily_job_limit=10**6)
        user.set_password(PASSWORD)
        user.save()
    reset_redis()
    env = {**production_env(2), "MODEL_AFFINITY": "1" if affinity else "0", "NODE_HEALTH_INTERVAL": "2"}
    rng = random.Random(seed)
    models = rng.choices(list(MIX), weights=list(MIX.values()), k=jobs)
    node_args = {"job_time": job_time, "load_time": load_time, "cache_none": True, "step_time": 0.01}
    media = Path(os.environ.get("BENCH_MEDIA", "/tmp/comfyportal-bench-media"))
    with Stack(nodes=0, webs=1, workers=1, env=env, media_root=media) as stack:
        rare_count = 2
        stack.nodes = spawn_group(nodes - rare_count, models={"checkpoints": COMMON}, **node_args)
        stack.nodes += spawn_group(rare_count, models={"checkpoints": [*COMMON, RARE]}, **node_args)
        for i, node in enumerate(stack.nodes):
            ComfyNode.objects.create(name=f"gpu{i:02d}", base_url=node.url, max_queue=2)
        deadline = time.monotonic() + 60
        while ComfyNode.objects.filter(status="ONLINE", inventory_read_at__isnull=False).count() < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("nodes did not come online")
            time.sleep(0.2)
        upload_workflow(workflow_raw=GRAPH, spec_raw=SPEC)
        tokens = [
            httpx.post(stack.web_url + "/api/auth/token", json={"username": f"bench{i}", "password": PASSWORD}).json()[
                "access"
            ]
            for i in range(users)
        ]

        async def main():
            started = time.monotonic()
            box["started"] = time.time()
            ids = await submit_all(stack.web_url, tokens, models)
            box["submitted"] = time.monotonic() - started
            while await asyncio.to_thread(lambda: Job.objects.filter(status__in=["QUEUED", "RUNNING"]).count()):
                if time.monotonic() - started > 300:
                    break
                await asyncio.sleep(0.05)
            return ids, time.monotonic() - started

        box: dict = {}
        ids, wall = asyncio.run(main())
        states = [httpx.get(node.url + "/__control__").json() for node in stack.nodes]
        busy = 0.0  # what the nodes saw: from each prompt's start to its end (loads included)
        first = []
        idle = [0.0, 0.0, 0.0]  # node idle before its first prompt, between prompts, after its last
        ended = box["started"] + wall
        for node in stack.nodes:
            spans = []
            for entry in httpx.get(node.url + "/history", timeout=60).json().values():
                messages = dict(entry["status"]["messages"])
                start = messages.get("execution_start", {}).get("timestamp")
                end = (messages.get("execution_success") or messages.get("execution_error") or {}).get("timestamp")
                if start and end:
                    busy += (end - start) / 1000
                    spans.append((start / 1000, end / 1000))
            spans.sort()
            if spans:
                first.append(spans[0][0] - box["started"])
                idle[0] += spans[0][0] - box["started"]
                idle[1] += sum(max(0.0, b[0] - a[1]) for a, b in zip(spans, spans[1:]))
                idle[2] += max(0.0, ended - spans[-1][1])
        finished = list(Job.objects.filter(pk__in=ids))
    loads = sum(s["model_loads"] for s in states)
    load_seconds = sum(s["model_load_seconds"] for s in states)
    waits: dict[str, list[float]] = {}
    for job in finished:
        if job.submitted_at:
            waits.setdefault(job.inputs["model"], []).append((job.submitted_at - job.created_at).total_seconds())
    done = sum(1 for j in finished if j.status == "DONE")
    return {
        "affinity": affinity,
        "K": nodes,
        "N": jobs,
        "M": users,
        "loads": loads,
        "load_seconds": load_seconds,
        "wall": wall,
        "useful": jobs * job_time / (wall * nodes),
        "busy": busy / (wall * nodes),
        "submit": box["submitted"],
        "first_start": max(first, default=0.0),
        "idle": idle,
        "p95": {m: percentile(w, 95) for m, w in sorted(waits.items())},
        "per_model": {m: models.count(m) for m in MIX},
        "done": done,
        "errors": sum(1 for j in finished if j.status == "ERROR"),
    }


def table(results: list[dict]) -> str:
    rows = [
        ("model affinity", lambda r: "on" if r["affinity"] else "off"),
        ("nodes K / jobs N / users", lambda r: f"{r['K']} / {r['N']} / {r['M']}"),
        ("model loads (share of jobs)", lambda r: f"{r['loads']} ({r['loads'] / r['N']:.1%})"),
        ("time spent loading (all nodes)", lambda r: f"{r['load_seconds']:.0f} s"),
        ("wall time", lambda r: f"{r['wall']:.1f} s"),
        ("useful utilization (job time ÷ wall × K)", lambda r: f"{r['useful']:.3f}"),
        ("node busy share (jobs + loads ÷ wall × K)", lambda r: f"{r['busy']:.3f}"),
        (
            "node idle: before first / between / after last prompt (all nodes)",
            lambda r: " / ".join(f"{v:.1f}" for v in r["idle"]) + " s",
        ),
        ("submit time for N jobs / last node's first job", lambda r: f"{r['submit']:.1f} s / {r['first_start']:.1f} s"),
        *[
            (f"p95 wait {m} ({MIX[m]:.0%} of jobs)", lambda r, m=m: f"{r['p95'].get(m, float('nan')):.1f} s")
            for m in MIX
        ],
        ("jobs DONE / ERROR", lambda r: f"{r['done']} / {r['errors']}"),
    ]
    return runs_table(rows, results)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--load-time", type=float, default=2.0)
    parser.add_argument("--job-time", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--only", choices=("on", "off"), help="run one configuration only")
    add_database_argument(parser)
    args = parser.parse_args(argv)
    setup(args.database_url)
    results = []
    for affinity in (True, False):
        if args.only and args.only != ("on" if affinity else "off"):
            continue
        print(f"running model affinity {'on' if affinity else 'off'} …", flush=True)
        results.append(
            run(
                affinity=affinity,
                nodes=args.nodes,
                jobs=args.jobs,
                users=args.users,
                load_time=args.load_time,
                job_time=args.job_time,
                seed=args.seed,
            )
        )
    print(table(results))
    return 0 if all(r["done"] == r["N"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
