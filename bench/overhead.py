"""What the portal adds to a job, against the same test node driven directly.

One test ComfyUI node with a short job time (~15 ms, like a fast model-free workflow) runs the
same work two ways, alternated in one sitting: a program talking to the node as ComfyUI's own
clients do (upload, queue the prompt, wait on the node's WebSocket, read /history, download)
and a program using the portal's API (the picture sent with the job in one request,
POST /api/jobs/with-files; with `--separate-upload`, POST /api/uploads then POST /api/jobs, to
compare the two; wait on /ws/jobs/, download). It prints:

- (a) one job at a time, submit → result bytes in hand: p50/p95 each way and the difference;
- (b) M jobs at once, time to the last result: the throughput ratio portal ÷ direct;
- (c) CPU per job in each portal process (web, worker) during (a) and (b), and what each uses
  per second with nothing to do (a share of every job's figure);
- (d) what the fixed parts cost before the portal's own work: the web's CPU for the job's two
  requests refused at once (400, 404), and a client's own CPU per job driven directly.

Run with `python -m bench.overhead` (also part of `make bench`); see docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import io
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, setup  # noqa: E402
from bench.jobs import percentile, production_env, reference_loop_ms  # noqa: E402

PASSWORD = "bench-password-123"
# The portal decodes at most UPLOAD_DECODES_PER_USER (2) uploads of one user at once and answers
# more with 429: the client keeps to it, as the API documents.
UPLOADS_AT_ONCE = 2
SLUG = "overhead"

# Upload a picture, scale it, invert it, save it: model-free, as in the measurement.
GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "scale_by": 0.5}},
    "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "overhead"}},
}
SPEC = {
    "spec_version": "1.0",
    "slug": SLUG,
    "name": "Overhead",
    "version": "1.0.0",
    "category": "tools",
    "description": "Scale and invert a picture.",
    "inputs": [
        {"id": "image", "label": "Image", "type": "image", "required": True, "bind": [{"node": "1", "input": "image"}]}
    ],
    "outputs": [{"node": "4", "type": "image"}],
}


def sample_png(side: int = 256, seed: int = 7) -> bytes:
    """A picture with some detail (a flat one would make PNG coding unrealistically cheap)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    base = (ramp[None, :, None] + ramp[:, None, None]) / 2
    noisy = np.clip(base + rng.normal(0, 24, (side, side, 3)), 0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, format="PNG")
    return out.getvalue()


class Finished:
    """Futures resolved by a WebSocket listener, keyed by prompt or job id (an end may arrive
    before the submitter starts waiting for it)."""

    def __init__(self):
        self.waiting: dict[str, asyncio.Future] = {}
        self.ended: dict[str, object] = {}

    def end(self, key: str, value: object) -> None:
        future = self.waiting.pop(key, None)
        if future is None:
            self.ended[key] = value
        elif not future.done():
            future.set_result(value)

    async def wait(self, key: str, timeout: float = 60) -> object:
        if key in self.ended:
            return self.ended.pop(key)
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return await asyncio.wait_for(future, timeout)


class Direct:
    """A program talking to the node itself, as ComfyUI's clients do."""

    def __init__(self, session, node_url: str, pictures: Callable[[], bytes]):
        self.session, self.url, self.pictures = session, node_url, pictures
        self.client_id = uuid.uuid4().hex
        self.finished = Finished()

    async def listen(self, ready: asyncio.Event) -> None:
        ws_url = self.url.replace("http", "ws") + f"/ws?clientId={self.client_id}"
        async with self.session.ws_connect(ws_url, max_msg_size=2**24) as socket:
            ready.set()
            async for message in socket:
                if message.type != 1:  # binary previews
                    continue
                data = json.loads(message.data)
                body = data.get("data") or {}
                if data.get("type") == "executing" and body.get("node") is None and body.get("prompt_id"):
                    self.finished.end(body["prompt_id"], True)
                elif data.get("type") == "execution_error":
                    self.finished.end(body.get("prompt_id", ""), RuntimeError(str(body)[:200]))

    async def job(self) -> None:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("image", self.pictures(), filename=f"in-{uuid.uuid4().hex[:12]}.png", content_type="image/png")
        form.add_field("overwrite", "true")
        async with self.session.post(self.url + "/upload/image", data=form) as response:
            name = (await response.json())["name"]
        prompt = copy.deepcopy(GRAPH)
        prompt["1"]["inputs"]["image"] = name
        async with self.session.post(
            self.url + "/prompt", json={"prompt": prompt, "client_id": self.client_id}
        ) as response:
            prompt_id = (await response.json())["prompt_id"]
        outcome = await self.finished.wait(prompt_id)
        if isinstance(outcome, Exception):
            raise outcome
        async with self.session.get(self.url + f"/history/{prompt_id}") as response:
            image = (await response.json())[prompt_id]["outputs"]["4"]["images"][0]
        async with self.session.get(self.url + "/view", params=image) as response:
            if response.status != 200 or not await response.read():
                raise RuntimeError(f"direct download failed: {response.status}")


class Portal:
    """A program using the portal's API with an access token."""

    def __init__(
        self, session, web_url: str, token: str, pictures: Callable[[], bytes], *, separate_upload: bool = False
    ):
        self.session, self.url, self.pictures = session, web_url, pictures
        self.separate_upload = separate_upload
        self.headers = {"Authorization": f"Bearer {token}"}
        self.token = token
        self.finished = Finished()
        self.uploading = asyncio.Semaphore(UPLOADS_AT_ONCE)
        self.stamps: dict[str, dict[str, float]] = {}  # job id → when each step ended (epoch s)

    async def listen(self, ready: asyncio.Event) -> None:
        ws_url = self.url.replace("http", "ws") + f"/ws/jobs/?token={self.token}"
        async with self.session.ws_connect(ws_url, max_msg_size=2**24) as socket:
            ready.set()
            async for message in socket:
                job = json.loads(message.data).get("job") or {}
                if job.get("status") in ("DONE", "ERROR", "CANCELLED"):
                    self.finished.end(job["id"], job)

    async def upload(self) -> str:
        """POST /api/uploads as a well-behaved client: at most UPLOAD_DECODES_PER_USER at once,
        and a 429 retried after its Retry-After."""
        import aiohttp

        async with self.uploading:
            while True:
                form = aiohttp.FormData()
                form.add_field("file", self.pictures(), filename="in.png", content_type="image/png")
                form.add_field("kind", "image")
                async with self.session.post(self.url + "/api/uploads", data=form, headers=self.headers) as response:
                    if response.status == 429:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status != 201:
                        raise RuntimeError(f"upload failed: {response.status} {(await response.read())[:200]!r}")
                    return (await response.json())["id"]

    async def submit_with_file(self) -> str:
        """POST /api/jobs/with-files: the picture decoded under the same per-user bound as an
        upload, so the same client rules (at most UPLOADS_AT_ONCE, a 429 retried)."""
        import aiohttp

        async with self.uploading:
            while True:
                form = aiohttp.FormData()
                form.add_field("workflow", SLUG)
                form.add_field("image", self.pictures(), filename="in.png", content_type="image/png")
                async with self.session.post(
                    self.url + "/api/jobs/with-files", data=form, headers=self.headers
                ) as response:
                    if response.status == 429:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status != 201:
                        raise RuntimeError(f"submit failed: {response.status} {(await response.read())[:200]!r}")
                    return (await response.json())["id"]

    async def submit_after_upload(self, stamps: dict[str, float]) -> str:
        upload_id = await self.upload()
        stamps["uploaded"] = time.time()
        async with self.session.post(
            self.url + "/api/jobs", json={"workflow": SLUG, "inputs": {"image": upload_id}}, headers=self.headers
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"submit failed: {response.status} {(await response.read())[:200]!r}")
            return (await response.json())["id"]

    async def job(self) -> None:
        stamps = {"start": time.time()}
        if self.separate_upload:
            job_id = await self.submit_after_upload(stamps)
            stamps["submitted"] = time.time()
        else:
            job_id = await self.submit_with_file()
            stamps["submitted_with_file"] = time.time()
        job = await self.finished.wait(job_id)
        stamps["event"] = time.time()
        if job["status"] != "DONE":
            raise RuntimeError(f"portal job ended {job['status']}: {job.get('error')}")
        outputs = job.get("outputs")
        if not outputs:  # an event without the results: ask for the job
            async with self.session.get(self.url + f"/api/jobs/{job_id}", headers=self.headers) as response:
                outputs = (await response.json())["outputs"]
        async with self.session.get(self.url + outputs[0]["url"], headers=self.headers) as response:
            if response.status != 200 or not await response.read():
                raise RuntimeError(f"portal download failed: {response.status}")
        stamps["downloaded"] = time.time()
        self.stamps[job_id] = stamps


class PortalCpu:
    """CPU seconds of the web and worker process trees between start() and stop()."""

    def __init__(self, stack):
        self.roots = {"web": [p for p, _ in stack.webs], "worker": list(stack.workers)}

    def _now(self) -> dict[str, float]:
        import psutil

        used: dict[str, float] = {}
        for part, roots in self.roots.items():
            for root in roots:
                try:
                    proc = psutil.Process(root.pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        times = p.cpu_times()
                        used[part] = used.get(part, 0.0) + times.user + times.system
                except psutil.Error:
                    pass
        return used

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> dict[str, float]:
        after = self._now()
        return {part: after.get(part, 0.0) - self.before.get(part, 0.0) for part in self.roots}


def idle_cpu(stack, seconds: float = 5.0) -> dict[str, float]:
    """CPU seconds per second of each portal part with nothing to do (runners waiting, health
    checks, the worker's supervision): part of every job's figure in (c) above."""
    time.sleep(2)  # past the start-up
    cpu = PortalCpu(stack)
    cpu.start()
    time.sleep(seconds)
    return {part: used / seconds for part, used in cpu.stop().items()}


def sample_pictures(distinct: bool, count: int) -> list[bytes]:
    """The jobs' pictures, made beforehand: one, or (`distinct`) `count` different ones of the
    same kind. Each way takes them in turn (`itertools.cycle(...).__next__`)."""
    return [sample_png(seed=seed) for seed in range(count)] if distinct else [sample_png()]


async def measure(
    stack, token: str, rounds: int, backlog: int, separate_upload: bool = False, distinct_pictures: bool = False
) -> dict:
    import aiohttp

    pictures = sample_pictures(distinct_pictures, count=5 + rounds + 2 * backlog + FIXED_COST_REQUESTS)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        direct = Direct(session, stack.nodes[0].url, itertools.cycle(pictures).__next__)
        portal = Portal(
            session, stack.web_url, token, itertools.cycle(pictures).__next__, separate_upload=separate_upload
        )
        listeners = []
        for side in (direct, portal):
            ready = asyncio.Event()
            listeners.append(asyncio.create_task(side.listen(ready)))
            await asyncio.wait_for(ready.wait(), 10)
        for _ in range(5):  # warm both paths (connections, caches, the runner's pools)
            await direct.job()
            await portal.job()

        cpu = PortalCpu(stack)
        single: dict[str, list[float]] = {"direct": [], "portal": []}
        cpu.start()
        for i in range(rounds):
            order = (("direct", direct), ("portal", portal)) if i % 2 else (("portal", portal), ("direct", direct))
            for name, side in order:
                started = time.perf_counter()
                await side.job()
                single[name].append(time.perf_counter() - started)
        single_cpu = cpu.stop()
        single_stamps, portal.stamps = portal.stamps, {}

        burst: dict[str, list[float]] = {"direct": [], "portal": []}
        burst_windows: dict[str, list[tuple[float, float]]] = {"direct": [], "portal": []}
        burst_cpu = {"web": 0.0, "worker": 0.0}
        for i in range(2):
            order = (("direct", direct), ("portal", portal)) if i % 2 else (("portal", portal), ("direct", direct))
            for name, side in order:
                if name == "portal":
                    cpu.start()
                started, wall_started = time.perf_counter(), time.time()
                await asyncio.gather(*(side.job() for _ in range(backlog)))
                burst[name].append(time.perf_counter() - started)
                burst_windows[name].append((wall_started, time.time()))
                if name == "portal":
                    for part, seconds in cpu.stop().items():
                        burst_cpu[part] += seconds
        spans = await node_spans(session, stack.nodes[0].url)
        fixed = await fixed_costs(session, stack, portal, direct)
        for task in listeners:
            task.cancel()
    return {
        "rounds": rounds,
        "backlog": backlog,
        "single": single,
        "single_cpu": {part: seconds / rounds for part, seconds in single_cpu.items()},
        "single_stamps": single_stamps,
        "burst": burst,
        "burst_cpu": {part: seconds / (2 * backlog) for part, seconds in burst_cpu.items()},
        "burst_idle": {
            name: [idle_between(spans, window) for window in windows] for name, windows in burst_windows.items()
        },
        "fixed": fixed,
    }


FIXED_COST_REQUESTS = 200  # of each kind in fixed_costs


async def fixed_costs(
    session, stack, portal: Portal, direct: Direct, count: int = FIXED_COST_REQUESTS
) -> dict[str, float]:
    """CPU seconds per request or job of what every job pays before the portal does any of its
    work: the web's share of a job's two requests refused at once, after the token's check (the
    picture sent under a field the workflow does not have: 400; a file that does not exist: 404),
    and this process's share of one job driven directly (a ComfyUI client's own cost)."""
    import aiohttp

    cpu = PortalCpu(stack)

    async def refused_submit() -> None:
        form = aiohttp.FormData()
        form.add_field("workflow", SLUG)
        form.add_field("no_such_field", portal.pictures(), filename="in.png", content_type="image/png")
        async with session.post(portal.url + "/api/jobs/with-files", data=form, headers=portal.headers) as response:
            await response.read()
            assert response.status == 400, response.status

    async def refused_download() -> None:
        async with session.get(portal.url + f"/api/files/{uuid.uuid4()}", headers=portal.headers) as response:
            await response.read()
            assert response.status == 404, response.status

    costs = {}
    for name, request in (("submit", refused_submit), ("download", refused_download)):
        cpu.start()
        for _ in range(count):
            await request()
        costs[name] = cpu.stop()["web"] / count
    started = time.process_time()
    for _ in range(count // 2):
        await direct.job()
    costs["direct_client"] = (time.process_time() - started) / (count // 2)
    return costs


async def node_spans(session, node_url: str) -> list[tuple[float, float]]:
    """When the node ran each prompt (epoch s, from its history), in order."""
    async with session.get(node_url + "/history") as response:
        history = await response.json()
    spans = []
    for entry in history.values():
        messages = dict(entry["status"]["messages"])
        start = messages.get("execution_start", {}).get("timestamp")
        end = (messages.get("execution_success") or messages.get("execution_error") or {}).get("timestamp")
        if start and end:
            spans.append((start / 1000, end / 1000))
    return sorted(spans)


def idle_between(spans: list[tuple[float, float]], window: tuple[float, float]) -> float:
    """The node's idle seconds between its first and last prompt inside `window`: with a
    backlog waiting, time the node waited for the next prompt."""
    inside = [span for span in spans if window[0] <= span[0] <= window[1]]
    return sum(max(0.0, b[0] - a[1]) for a, b in zip(inside, inside[1:]))


def create_workflow():
    """The benchmark's workflow, stored as an uploaded one is (with its combo inputs: a submit
    needs no graph)."""
    from workflows.models import Workflow
    from workflows.validation import combo_literals

    return Workflow.objects.create(
        slug=SLUG,
        name="Overhead",
        version="1.0.0",
        graph=GRAPH,
        spec=SPEC,
        class_types=sorted({node["class_type"] for node in GRAPH.values()}),
        combo_inputs=combo_literals(GRAPH, {}),
    )


def run(
    rounds: int,
    backlog: int,
    job_time: float,
    separate_upload: bool = False,
    max_queue: int = 2,
    distinct_pictures: bool = False,
) -> dict:
    import httpx

    from accounts.models import User
    from jobs.models import Job
    from nodes.models import ComfyNode
    from tests.harness import Stack, reset_redis, wait_for
    from workflows.models import Workflow

    Job.objects.all().delete()
    Workflow.objects.all().delete()
    ComfyNode.objects.all().delete()
    User.objects.all().delete()
    create_workflow()
    user = User(username="overhead", max_concurrent_jobs=10_000, max_queued_jobs=100_000, daily_job_limit=10**6)
    user.set_password(PASSWORD)
    user.save()
    reset_redis()
    env = {**production_env(runners=2), "API_RATE_LIMIT": "0", "EVENT_TIMESTAMPS": "0"}
    media = Path(os.environ.get("BENCH_MEDIA", "/tmp/comfyportal-bench-media"))
    speed_before = reference_loop_ms()
    with Stack(
        nodes=1,
        node_args={"job_time": job_time, "cache_none": True, "step_time": 0.0},
        webs=1,
        workers=1,
        env=env,
        media_root=media,
    ) as stack:
        ComfyNode.objects.create(name="gpu00", base_url=stack.nodes[0].url, max_queue=max_queue)
        wait_for(lambda: ComfyNode.objects.filter(status="ONLINE").exists(), timeout=30, what="the node online")
        token = httpx.post(
            stack.web_url + "/api/auth/token", json={"username": "overhead", "password": PASSWORD}
        ).json()["access"]
        idle = idle_cpu(stack)
        result = asyncio.run(measure(stack, token, rounds, backlog, separate_upload, distinct_pictures))
        result["idle_cpu"] = idle
        result["steps"] = steps_of(result.pop("single_stamps"))
    result["speed"] = (speed_before, reference_loop_ms())
    result["job_time"] = job_time
    result["separate_upload"] = separate_upload
    result["distinct_pictures"] = distinct_pictures
    result["max_queue"] = max_queue
    return result


# Where a job's time goes, one at a time: the client's clock and the job row's (one machine).
STEPS = (
    ("upload and submit, one request", "start", "submitted_with_file"),
    ("upload request", "start", "uploaded"),  # this and the next: with --separate-upload
    ("submit request", "uploaded", "submitted"),
    ("submitted → claimed by a runner", "created", "started"),
    ("claimed → node accepted the prompt (inputs sent)", "started", "accepted"),
    ("accepted → stored DONE (the node's job, outputs fetched and stored)", "accepted", "finished"),
    ("stored DONE → event at the client", "finished", "event"),
    ("download request", "event", "downloaded"),
)


def steps_of(stamps: dict[str, dict[str, float]]) -> dict[str, float]:
    """The median of each step of the single jobs, in ms."""
    from jobs.models import Job

    rows = Job.objects.filter(pk__in=list(stamps)).values_list(
        "pk", "created_at", "started_at", "submitted_at", "finished_at"
    )
    spans: dict[str, list[float]] = {name: [] for name, _, _ in STEPS}
    for pk, created, started, accepted, finished in rows:
        if None in (created, started, accepted, finished):
            continue
        at = {
            **stamps[str(pk)],
            "created": created.timestamp(),
            "started": started.timestamp(),
            "accepted": accepted.timestamp(),
            "finished": finished.timestamp(),
        }
        for name, begin, end in STEPS:
            if begin in at and end in at:  # the submit's steps are one way's or the other's
                spans[name].append(at[end] - at[begin])
    return {name: percentile(values, 50) * 1000 for name, values in spans.items() if values}


def added(r: dict, q: float) -> float:
    """Seconds the portal adds at percentile `q`, one job at a time."""
    return percentile(r["single"]["portal"], q) - percentile(r["single"]["direct"], q)


def throughput(r: dict) -> float:
    """Portal ÷ direct, M jobs at once (best of each)."""
    return min(r["burst"]["direct"]) / min(r["burst"]["portal"])


def table(r: dict) -> str:
    def ms(values: list[float], p: float) -> float:
        return percentile(values, p) * 1000

    d, p = r["single"]["direct"], r["single"]["portal"]
    direct_burst, portal_burst = min(r["burst"]["direct"]), min(r["burst"]["portal"])
    rows = [
        ("test node job time; its max_queue", f"{r['job_time'] * 1000:.0f} ms; {r['max_queue']}"),
        (
            "portal client's submit",
            "POST /api/uploads + POST /api/jobs" if r.get("separate_upload") else "POST /api/jobs/with-files",
        ),
        (
            "pictures sent",
            "a different one with every job" if r.get("distinct_pictures") else "the same one with every job",
        ),
        (f"(a) one at a time, {r['rounds']} each: direct p50 / p95", f"{ms(d, 50):.1f} / {ms(d, 95):.1f} ms"),
        ("(a) through the portal p50 / p95", f"{ms(p, 50):.1f} / {ms(p, 95):.1f} ms"),
        ("(a) added by the portal p50 / p95", f"{added(r, 50) * 1000:.1f} / {added(r, 95) * 1000:.1f} ms"),
        (
            f"(b) {r['backlog']} at once, best of 2: direct / portal",
            f"{direct_burst:.2f} s / {portal_burst:.2f} s",
        ),
        ("(b) portal throughput ÷ direct", f"{throughput(r):.2f}×"),
        (
            "(b) node idle between prompts, best run: direct / portal",
            "{:.2f} s / {:.2f} s".format(
                *(r["burst_idle"][n][r["burst"][n].index(min(r["burst"][n]))] for n in ("direct", "portal"))
            ),
        ),
        (
            "(c) portal CPU per job, one at a time: web / worker / all",
            "{web:.1f} / {worker:.1f} / {all:.1f} ms".format(
                all=sum(r["single_cpu"].values()) * 1000, **{k: v * 1000 for k, v in r["single_cpu"].items()}
            ),
        ),
        (
            "(c) portal CPU per job, backlog: web / worker / all",
            "{web:.1f} / {worker:.1f} / {all:.1f} ms".format(
                all=sum(r["burst_cpu"].values()) * 1000, **{k: v * 1000 for k, v in r["burst_cpu"].items()}
            ),
        ),
        *((f"(a) portal p50 of one step: {name}", f"{ms:.1f} ms") for name, ms in r.get("steps", {}).items()),
        (
            "(c) portal CPU with nothing to do, per second: web / worker",
            "{web:.1f} / {worker:.1f} ms".format(**{k: v * 1000 for k, v in r["idle_cpu"].items()}),
        ),
        (
            "(d) web CPU of the job's two requests refused at once: with the picture / a file's GET",
            "{submit:.1f} / {download:.1f} ms".format(**{k: v * 1000 for k, v in r["fixed"].items()}),
        ),
        (
            "(d) a client's own CPU per job driven directly (upload, prompt, socket, history, download)",
            f"{r['fixed']['direct_client'] * 1000:.1f} ms",
        ),
        ("machine alone: reference loop before / after", f"{r['speed'][0]:.1f} / {r['speed'][1]:.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["| " + "metric".ljust(width) + " | value |", "|" + "-" * (width + 2) + "|---|"]
    lines += ["| " + name.ljust(width) + f" | {value} |" for name, value in rows]
    return "\n".join(lines)


# The targets of the issue that asked for this benchmark (docs/performance.md).
ADDED_P50_TARGET, ADDED_P95_TARGET = 0.025, 0.050  # s added by the portal, one job at a time
THROUGHPUT_TARGET = 0.8  # portal ÷ direct, M jobs at once
CPU_TARGET = 0.008  # s of portal CPU per job, all processes


def target_lines(r: dict) -> list[str]:
    """Each target, met or not, for this run."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    p50, p95, ratio = added(r, 50), added(r, 95), throughput(r)
    cpu = {name: sum(r[key].values()) for name, key in (("one at a time", "single_cpu"), ("backlog", "burst_cpu"))}
    return [
        "Targets:",
        f"- added p50 ≤ {ADDED_P50_TARGET * 1000:.0f} ms: {p50 * 1000:.1f} ms: {verdict(p50 <= ADDED_P50_TARGET)}",
        f"- added p95 ≤ {ADDED_P95_TARGET * 1000:.0f} ms: {p95 * 1000:.1f} ms: {verdict(p95 <= ADDED_P95_TARGET)}",
        f"- throughput ≥ {THROUGHPUT_TARGET}× direct: {ratio:.2f}×: {verdict(ratio >= THROUGHPUT_TARGET)}",
        *(
            f"- CPU per job ≤ {CPU_TARGET * 1000:.0f} ms, {name}: {seconds * 1000:.1f} ms: "
            f"{verdict(seconds <= CPU_TARGET)}"
            for name, seconds in cpu.items()
        ),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="jobs one at a time, each way")
    parser.add_argument("--backlog", type=int, default=100, help="jobs submitted at once, each way (M)")
    parser.add_argument("--job-time", type=float, default=0.015, help="the test node's seconds per prompt")
    parser.add_argument(
        "--separate-upload",
        action="store_true",
        help="the portal client uploads first (POST /api/uploads), then submits (POST /api/jobs): the "
        "two-request path, to compare with the default one request (POST /api/jobs/with-files)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=2,
        help="the node's max_queue: the portal's prompts on it at once (the default's 2: one running, one waiting)",
    )
    parser.add_argument(
        "--distinct-pictures",
        action="store_true",
        help="a different picture with every job (both ways), instead of the same one re-sent: the portal "
        "then decodes each and its runner sends each to the node",
    )
    add_database_argument(parser)
    args = parser.parse_args(argv)
    setup(args.database_url)
    print(f"running overhead: {args.rounds} single jobs and {args.backlog} at once, each way …", flush=True)
    result = run(args.rounds, args.backlog, args.job_time, args.separate_upload, args.max_queue, args.distinct_pictures)
    print(table(result))
    print("\n".join(target_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
