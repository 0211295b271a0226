"""Throughput benchmark: do the GPUs stay busy?

Starts K test ComfyUI nodes with a fixed job time T, the real web (daphne) and worker
(qcluster) against PostgreSQL + Redis, submits N jobs from M users through the HTTP API,
waits for all, and prints a table. Run with `make bench` (both standard configurations)
or `python -m bench.jobs --nodes 4 --jobs 200 --job-time 0.25`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, runs_table, setup  # noqa: E402

PASSWORD = "bench-password-123"
STANDARD = [(4, 200, 0.25), (32, 1000, 0.5)]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def reference_loop_ms() -> float:
    """How fast this machine runs Python right now: one core summing a million integers.
    Figures from different runs compare only where this does too (shared machines drift)."""
    import timeit

    return min(timeit.repeat("sum(range(10**6))", number=10, repeat=5)) / 10 * 1000


class MemorySampler(threading.Thread):
    """Peak memory of the worker process trees, and how many processes they used.

    `peak_mb` is the sum of their PSS: a page that forked processes share counts once, split
    between them, so what Django and its libraries loaded before the fork counts once, not once
    per process. `peak_rss_mb`, the sum of their RSS, counts it in every process."""

    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots = roots
        self.peak_mb = 0.0
        self.peak_rss_mb = 0.0
        self.processes: set[int] = set()
        self.stop = threading.Event()

    def run(self):
        import psutil

        while not self.stop.is_set():
            pss = rss = 0
            for root in self.roots:
                try:
                    proc = psutil.Process(root.pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        self.processes.add(p.pid)
                        memory = p.memory_full_info()
                        pss, rss = pss + memory.pss, rss + memory.rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, pss / 2**20)
            self.peak_rss_mb = max(self.peak_rss_mb, rss / 2**20)
            self.stop.wait(0.5)


class CpuMeter:
    """CPU seconds (user + system) that each part of the system used between start() and stop()."""

    def __init__(self, stack):
        self.stack = stack
        self.before: dict[int, float] = {}
        self.used: dict[str, float] = {}

    def _processes(self) -> dict[int, str]:
        import psutil

        parts: dict[int, str] = {}
        for name, roots in (
            ("web (daphne)", [p for p, _ in self.stack.webs]),
            ("worker (qcluster)", self.stack.workers),
            ("test nodes", [n.process for n in self.stack.nodes]),
        ):
            for root in roots:
                try:
                    proc = psutil.Process(root.pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        parts[p.pid] = name
                except psutil.Error:
                    pass
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in ("postgres", "redis-server"):
                parts[proc.pid] = "postgresql + redis"
        me = psutil.Process()
        for p in [me, *me.children(recursive=True)]:  # our submitters and socket listeners
            parts.setdefault(p.pid, "benchmark clients")
        return parts

    @staticmethod
    def _cpu(pid: int) -> float | None:
        import psutil

        try:
            times = psutil.Process(pid).cpu_times()
            return times.user + times.system
        except psutil.Error:
            return None

    def start(self) -> None:
        self.parts = self._processes()
        self.before = {pid: cpu for pid in self.parts if (cpu := self._cpu(pid)) is not None}

    def stop(self) -> None:
        for pid, name in {**self.parts, **self._processes()}.items():
            cpu = self._cpu(pid)
            if cpu is not None:
                self.used[name] = self.used.get(name, 0.0) + cpu - self.before.get(pid, 0.0)


async def listen_progress(ws_url: str, latencies: list[tuple[float, float, float]], stop: asyncio.Event) -> None:
    """One user's /ws/jobs/: time from the runner receiving a node's progress to us receiving it
    (and to the web tier relaying it, and to the runner publishing it)."""
    import websockets

    async with websockets.connect(ws_url, max_size=2**24) as socket:
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=0.5))
            except TimeoutError:
                continue
            job = message.get("job") or {}
            if job.get("event") == "progress" and job.get("sent_at"):
                latencies.append(
                    (
                        time.time() - job["sent_at"],
                        job.get("relayed_at", job["sent_at"]) - job["sent_at"],
                        job.get("published_at", job["sent_at"]) - job["sent_at"],
                    )
                )


def listener_process(urls: list[str], results, ready, stop) -> None:
    """Listen on every user's socket in a process of its own, so that the benchmark's own
    submitting does not delay the measurement."""

    async def main():
        latencies: list[float] = []
        done = asyncio.Event()
        tasks = [asyncio.create_task(listen_progress(url, latencies, done)) for url in urls]
        await asyncio.sleep(0.5)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(latencies)

    asyncio.run(main())


async def submit_all(web_urls: list[str], tokens: list[str], n: int, concurrency: int = 16) -> list[str]:
    """Submit n jobs over HTTP, `concurrency` at a time, round-robin over web instances and users.
    (aiohttp: the lightest client at hand; the benchmark's own CPU comes off the same 2 cores.)"""
    import aiohttp

    ids: list[str] = []
    queue = list(range(n))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker():
            while queue:
                i = queue.pop(0)
                async with session.post(
                    web_urls[i % len(web_urls)] + "/api/jobs",
                    json={"workflow": "bench", "inputs": {"prefix": f"b{i}"}},
                    headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                ) as response:
                    body = await response.read()
                    if response.status != 201:
                        raise RuntimeError(f"submit failed: {response.status} {body[:200]!r}")
                    ids.append(json.loads(body)["id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def production_env(runners: int) -> dict:
    """Measure what production runs (docs/deploy.md), not the test harness's debug settings:
    DEBUG off, the default health interval and runner timings, the per-user rate limit on."""
    return {
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "NODE_HEALTH_INTERVAL": "10",
        "NODE_OFFLINE_AFTER": "2",
        "RUNNER_STALE_AFTER": "20",
        "DISPATCH_TICK": "1",
        "API_RATE_LIMIT": "120",
        "LOG_LEVEL": "WARNING",
        "JOB_RUNNERS": runners,
        "Q_WORKERS": max(4, runners + 1),
        "EVENT_TIMESTAMPS": "1",  # the progress latency split (sent, published, relayed)
    }


def run(nodes: int, jobs: int, job_time: float, users: int, webs: int, runners: int) -> dict:
    import httpx
    from django.db.models import Count

    from jobs.models import Job
    from nodes.models import ComfyNode
    from tests.factories import TINY_GRAPH, tiny_spec
    from tests.harness import Stack, reset_redis
    from workflows.models import Workflow

    Job.objects.all().delete()
    Workflow.objects.all().delete()
    ComfyNode.objects.all().delete()
    spec = tiny_spec("bench")
    Workflow.objects.create(
        slug="bench",
        name="Bench",
        version="1.0.0",
        graph=TINY_GRAPH,
        spec=spec,
        class_types=["EmptyImage", "ImageInvert", "SaveImage"],
    )
    from accounts.models import User

    User.objects.all().delete()
    for i in range(users):
        user = User(
            username=f"bench{i}", max_concurrent_jobs=10_000, max_queued_jobs=100_000, daily_job_limit=1_000_000
        )
        user.set_password(PASSWORD)
        user.save()
    reset_redis()
    env = production_env(runners)
    media = Path(os.environ.get("BENCH_MEDIA", "/tmp/comfyportal-bench-media"))
    speed_before = reference_loop_ms()  # the machine alone, before and after (see main())
    with Stack(
        nodes=nodes,
        node_args={"job_time": job_time, "cache_none": True, "step_time": 0.01},
        webs=webs,
        workers=1,
        env=env,
        media_root=media,
        nodes_in_one_process=True,
    ) as stack:
        for i, node in enumerate(stack.nodes):
            ComfyNode.objects.create(
                name=f"gpu{i:02d}", base_url=node.url, max_queue=int(os.environ.get("BENCH_MAX_QUEUE", "2"))
            )
        deadline = time.monotonic() + 30
        while ComfyNode.objects.filter(status="ONLINE").count() < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("nodes did not come online")
            time.sleep(0.2)
        tokens = [
            httpx.post(stack.web_url + "/api/auth/token", json={"username": f"bench{i}", "password": PASSWORD}).json()[
                "access"
            ]
            for i in range(users)
        ]
        sampler = MemorySampler(stack.workers)
        sampler.start()

        # Measure the steady state: every runner up, and a first job through each (warm pools).
        import redis

        presence = redis.Redis.from_url(os.environ["REDIS_URL"])
        while len(list(presence.scan_iter(match=f"cp:{stack.namespace}:runner:*"))) < runners:
            if time.monotonic() > deadline + 30:
                raise RuntimeError("the job runners did not start")
            time.sleep(0.2)
        # Idle-node dispatch latency: one job at a time on idle nodes (the first ones warm up).
        idle_ids = []
        for i in range(-runners, 20):
            response = httpx.post(
                stack.web_url + "/api/jobs",
                json={"workflow": "bench", "inputs": {"prefix": f"i{i}"}},
                headers={"Authorization": f"Bearer {tokens[0]}"},
            )
            idle_ids.append(response.json()["id"])
            while Job.objects.filter(pk=idle_ids[-1]).exclude(status="DONE").exists():
                time.sleep(0.05)
            if i < 0:
                idle_ids.pop()
        idle = [(j.submitted_at - j.created_at).total_seconds() for j in Job.objects.filter(pk__in=idle_ids)]
        Job.objects.all().delete()
        for node in stack.nodes:
            httpx.post(node.url + "/history", json={"clear": True})

        import multiprocessing

        context = multiprocessing.get_context("spawn")
        results, ready, stop_listening = context.Queue(), context.Event(), context.Event()
        urls = [
            stack.web_urls[i % len(stack.web_urls)].replace("http", "ws") + f"/ws/jobs/?token={tokens[i]}"
            for i in range(users)
        ]
        listener = context.Process(target=listener_process, args=(urls, results, ready, stop_listening))
        listener.start()
        ready.wait(30)

        async def main():
            started = time.monotonic()
            box["wall_started"] = time.time()
            ids = await submit_all(stack.web_urls, tokens, jobs)
            submitted = time.monotonic() - started
            # Every job in the database is this run's (the idle phase's were deleted): a count
            # by status, not by the N ids, keeps this poll from loading the machine it measures.
            while await asyncio.to_thread(lambda: Job.objects.filter(status__in=["QUEUED", "RUNNING"]).count()):
                if time.monotonic() - started > 60 + 10 * jobs * job_time / nodes:
                    break
                await asyncio.sleep(0.02)
            makespan = time.monotonic() - started
            return ids, makespan, submitted

        box: dict = {}
        cpu = CpuMeter(stack)
        cpu.start()
        ids, makespan, submit_seconds = asyncio.run(main())
        cpu.stop()
        wall_started = box["wall_started"]
        stop_listening.set()
        latencies = results.get(timeout=30)
        listener.join(10)
        sampler.stop.set()
        # What the nodes themselves saw: busy time and how often each job ran.
        busy = 0.0
        gaps: list[float] = []
        gap_at: list[tuple[float, float]] = []
        executions: dict[str, int] = {}
        first_starts: list[float] = []  # per node: its first prompt's start, from the first submit
        last_ends: list[float] = []
        for node in stack.nodes:
            spans = []
            for prompt_id, entry in httpx.get(node.url + "/history", timeout=60).json().items():
                messages = dict(entry["status"]["messages"])
                start = messages.get("execution_start", {}).get("timestamp")
                end = (messages.get("execution_success") or messages.get("execution_error") or {}).get("timestamp")
                if start and end:
                    busy += (end - start) / 1000
                    spans.append((start / 1000, end / 1000))
                executions[prompt_id] = executions.get(prompt_id, 0) + 1
            spans.sort()
            if spans:
                first_starts.append(spans[0][0] - wall_started)
                last_ends.append(spans[-1][1] - wall_started)
            gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
            gap_at += [(a[1], b[0] - a[1]) for a, b in zip(spans, spans[1:])]
        finished = Job.objects.filter(pk__in=ids)
        by_status = dict(finished.values_list("status").annotate(n=Count("id")))
        prompt_ids = set(finished.values_list("prompt_id", flat=True))
        dispatch = [(j.submitted_at - j.created_at).total_seconds() for j in finished if j.submitted_at]
        extra_runs = sum(1 for pid in executions if pid not in prompt_ids) + sum(n - 1 for n in executions.values())
        return {
            "K": nodes,
            "N": jobs,
            "T": job_time,
            "M": users,
            "webs": webs,
            "runners": runners,
            "makespan": makespan,
            "ideal": math.ceil(jobs / nodes) * job_time,
            "submit_seconds": submit_seconds,
            "utilization": busy / (nodes * makespan),
            "busy": busy,
            "dispatch_idle": (percentile(idle, 50), percentile(idle, 95), percentile(idle, 99)),
            "dispatch_load": (percentile(dispatch, 50), percentile(dispatch, 95), percentile(dispatch, 99)),
            "progress": (
                percentile([t for t, _, _ in latencies], 50),
                percentile([t for t, _, _ in latencies], 99),
                len(latencies),
            ),
            "progress_to_web": (
                percentile([r for _, r, _ in latencies], 50),
                percentile([r for _, r, _ in latencies], 99),
            ),
            "progress_in_runner": (
                percentile([p for _, _, p in latencies], 50),
                percentile([p for _, _, p in latencies], 99),
            ),
            "done": by_status.get("DONE", 0),
            "lost": jobs - by_status.get("DONE", 0) - by_status.get("ERROR", 0),
            "errors": by_status.get("ERROR", 0),
            "twice": extra_runs,
            "worker_processes": len(sampler.processes),
            "peak_mb": sampler.peak_mb,
            "peak_rss_mb": sampler.peak_rss_mb,
            "gaps": (sum(gaps), max(gaps, default=0), sum(1 for g in gaps if g > 0.05)),
            "gaps_while_submitting": sum(g for t, g in gap_at if t < wall_started + submit_seconds),
            "first_start": (sum(first_starts), max(first_starts, default=0)),
            "last_end": (max(last_ends, default=0), sum(max(last_ends, default=0) - e for e in last_ends)),
            "cpu": cpu.used,
            "cores": os.cpu_count(),
            "speed": (speed_before, None),
        }


def table(results: list[dict]) -> str:
    rows = [
        ("nodes K / jobs N / job time T", lambda r: f"{r['K']} / {r['N']} / {r['T']} s"),
        ("users / web instances / runners", lambda r: f"{r['M']} / {r['webs']} / {r['runners']}"),
        ("makespan (ideal ceil(N/K)·T)", lambda r: f"{r['makespan']:.2f} s ({r['ideal']:.2f} s)"),
        ("node utilization", lambda r: f"{r['utilization']:.3f}"),
        (
            "dispatch latency idle p50/p95/p99",
            lambda r: "/".join(f"{v * 1000:.0f}" for v in r["dispatch_idle"]) + " ms",
        ),
        (
            "dispatch latency under load p50/p95/p99",
            lambda r: "/".join(f"{v * 1000:.0f}" for v in r["dispatch_load"]) + " ms",
        ),
        (
            "progress event latency p50/p99 (events)",
            lambda r: f"{r['progress'][0] * 1000:.1f}/{r['progress'][1] * 1000:.1f} ms ({r['progress'][2]})",
        ),
        (
            "… of which runner → web tier p50/p99",
            lambda r: "/".join(f"{v * 1000:.1f}" for v in r["progress_to_web"]) + " ms",
        ),
        (
            "… of which waiting in the runner p50/p99",
            lambda r: "/".join(f"{v * 1000:.1f}" for v in r["progress_in_runner"]) + " ms",
        ),
        (
            "node idle gaps between jobs: sum / max / count > 50 ms",
            lambda r: f"{r['gaps'][0]:.1f} s / {r['gaps'][1] * 1000:.0f} ms / {r['gaps'][2]}",
        ),
        ("… of which while jobs were still being submitted", lambda r: f"{r['gaps_while_submitting']:.1f} s"),
        (
            "node idle before its first job: sum / max",
            lambda r: f"{r['first_start'][0]:.1f} s / {r['first_start'][1] * 1000:.0f} ms",
        ),
        ("last node finished / all jobs stored", lambda r: f"{r['last_end'][0]:.2f} s / {r['makespan']:.2f} s"),
        ("node idle after its last job, before the last node's end", lambda r: f"{r['last_end'][1]:.1f} s"),
        ("submit time for N jobs", lambda r: f"{r['submit_seconds']:.2f} s"),
        ("jobs DONE / ERROR", lambda r: f"{r['done']} / {r['errors']}"),
        ("jobs lost", lambda r: str(r["lost"])),
        ("jobs run twice", lambda r: str(r["twice"])),
        (
            "worker processes / peak memory, PSS (RSS summed)",
            lambda r: f"{r['worker_processes']} / {r['peak_mb']:.0f} MB ({r['peak_rss_mb']:.0f} MB)",
        ),
        (
            "machine alone: reference loop before / after (lower = faster)",
            lambda r: f"{r['speed'][0]:.1f} / {r['speed'][1]:.1f} ms",
        ),
        (
            "CPU used / available during the run",
            lambda r: f"{sum(r['cpu'].values()):.1f} / {r['cores'] * r['makespan']:.1f} s",
        ),
        *[
            (f"… CPU per job: {part}", lambda r, part=part: f"{r['cpu'].get(part, 0) / r['N'] * 1000:.1f} ms")
            for part in ("web (daphne)", "worker (qcluster)", "test nodes", "postgresql + redis", "benchmark clients")
        ],
    ]
    return runs_table(rows, results)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--job-time", type=float)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument(
        "--webs",
        type=int,
        default=1,
        help="daphne web instances (default 1: on 2 shared cores a second one only adds contention)",
    )
    parser.add_argument("--runners", type=int, default=2, help="job runners (JOB_RUNNERS; production default 2)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each configuration this many times (a shared machine drifts between runs)",
    )
    add_database_argument(parser)
    args = parser.parse_args(argv)
    configs = [(args.nodes, args.jobs, args.job_time)] if args.nodes else STANDARD
    setup(args.database_url)
    results = []
    for nodes, jobs, job_time in [config for config in configs for _ in range(args.repeat)]:
        print(f"running K={nodes} N={jobs} T={job_time} …", flush=True)
        result = run(nodes, jobs, job_time, args.users, args.webs, args.runners)
        result["speed"] = (result["speed"][0], reference_loop_ms())
        results.append(result)
    print(table(results))
    return 0 if all(r["lost"] == 0 and r["twice"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
