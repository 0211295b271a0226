"""Pages with a big history: do the catalogue, my jobs and the gallery stay fast for a user
with 10,000 jobs and their results?

Creates one user with `--jobs` jobs (most DONE with a result, some failed or cancelled, a few
shared) over a year, another user with a smaller history, and eight workflows, in a fresh
PostgreSQL database (bulk inserts; the result rows share a dozen real PNG files of different
shapes, so the gallery a browser would show is a realistic one). Then it asks each page
`--repeat` times through Django's test client and prints p50 / p95 / max and the queries of
one request. Server time here is the whole request in this process: middleware, the view, the
queries and the templates, without HTTP and the network (daphne adds about the same per
request to every page). Run with
`python -m comfyportal.embedded -- python -m bench.pages [--jobs 10000] [--repeat 50]`.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, runs_table, setup  # noqa: E402
from bench.jobs import percentile, reference_loop_ms  # noqa: E402

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "x" * 50,
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
}
CATEGORIES = ["txt2img", "img2img", "inpaint", "upscale", "txt2img", "tools", "video", "img2img"]
# (width, height) of the shared result files: squares, wide and tall pictures
SHAPES = [(512, 512), (1024, 256), (256, 1024), (768, 512), (512, 768), (1024, 1024), (640, 360), (360, 640)]


def make_history(jobs: int, other_jobs: int) -> dict:
    """The users, workflows, jobs and results; returns what the pages are asked with."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone
    from PIL import Image

    from accounts.models import User
    from jobs.models import Job, JobFile
    from tests.factories import TINY_GRAPH, tiny_spec
    from workflows.models import Workflow

    user = User.objects.create_user("heavy", password="bench-password-123")
    other = User.objects.create_user("other", password="bench-password-123")
    workflows = []
    for i, category in enumerate(CATEGORIES):
        slug = f"wf-{i}"
        spec = {**tiny_spec(slug), "name": f"Workflow {i}", "category": category}
        workflows.append(
            Workflow(
                slug=slug,
                name=f"Workflow {i}",
                version="1.0.0",
                category=category,
                graph=TINY_GRAPH,
                spec=spec,
                class_types=["EmptyImage", "ImageInvert", "SaveImage"],
            )
        )
    workflows = Workflow.objects.bulk_create(workflows)
    files = []  # (file name, thumbnail name, width, height, size)
    folder = Path(settings.MEDIA_ROOT) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    for n, (w, h) in enumerate(SHAPES):
        picture = Image.new("RGB", (w, h), (40 + 25 * n, 120, 200 - 20 * n))
        buf = io.BytesIO()
        picture.save(buf, "PNG")
        (folder / f"r{n}.png").write_bytes(buf.getvalue())
        picture.thumbnail((320, 320))
        picture.save(folder / f"t{n}.webp", "WEBP")
        files.append((f"bench/r{n}.png", f"bench/t{n}.webp", w, h, len(buf.getvalue())))

    now = timezone.now()
    statuses = ["DONE"] * 18 + ["ERROR", "CANCELLED"]
    for owner, count in ((user, jobs), (other, other_jobs)):
        rows, results = [], []
        for i in range(count):
            status = statuses[i % len(statuses)]
            job = Job(
                id=uuid.uuid4(),
                user=owner,
                workflow=workflows[i % len(workflows)],
                status=status,
                inputs={"width": 64},
                progress=1.0,
                finished_at=now - timedelta(minutes=53 * i),
                started_at=now - timedelta(minutes=53 * i, seconds=20),
                gpu_seconds=12.5,
                queue_seconds=1.5,
                output_count=1 if status == "DONE" else 0,
                shareable=owner is other and i % 100 == 0,
            )
            rows.append(job)
            if status == "DONE":
                name, thumb, w, h, size = files[i % len(files)]
                results.append(
                    JobFile(
                        owner=owner,
                        job=job,
                        kind="RESULT",
                        file=name,
                        thumbnail=thumb,
                        content_type="image/png",
                        width=w,
                        height=h,
                        size=size,
                        sha256="0" * 64,
                        source_ref=f"ComfyUI_{i:05d}_.png",
                    )
                )
        Job.objects.bulk_create(rows, batch_size=2000)
        JobFile.objects.bulk_create(results, batch_size=2000)
    # auto_now_add stamped every row with now: spread them over the history as a year of use would.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET created_at = finished_at - interval '1 minute'")
        cursor.execute("UPDATE jobs_jobfile f SET created_at = j.finished_at FROM jobs_job j WHERE f.job_id = j.id")
        cursor.execute("ANALYZE")
    some_job = Job.objects.filter(user=user, status="DONE").order_by("-created_at")[10]
    return {"user": user, "job": some_job, "workflow": workflows[1].slug, "jobs": jobs}


def pages(history: dict) -> list[tuple[str, str, dict]]:
    """(name, URL, extra headers) of each page asked."""
    if "pages" not in history:
        history["pages"] = _pages(history)
    return history["pages"]


def _pages(history: dict) -> list[tuple[str, str, dict]]:
    from django.urls import reverse

    from jobs.models import JobFile

    try:
        from core.pagination import cursor_of
    except ImportError:  # a checkout from before the gallery paged by cursor: it reads page=

        def cursor_of(row):
            return ""

    job_pages = -(-history["jobs"] // 25)
    results = JobFile.objects.filter(owner=history["user"], kind="RESULT").order_by("-created_at", "-pk")
    count = results.count()
    deep_page, last_page = count * 3 // 4 // 48 + 1, -(-count // 48)
    # the gallery's pages go by cursor: the row before each page's first
    deep, last = results[(deep_page - 1) * 48 - 1], results[(last_page - 1) * 48 - 1]
    job = history["job"]
    htmx = {"HTTP_HX_REQUEST": "true"}
    return [
        ("catalogue", reverse("catalogue"), {}),
        ("my jobs, page 1", reverse("my_jobs"), {}),
        ("my jobs, partial (htmx poll)", reverse("my_jobs") + "?partial=list&page=1", htmx),
        (f"my jobs, page {job_pages * 3 // 4}", reverse("my_jobs") + f"?page={job_pages * 3 // 4}", {}),
        ("my jobs, last page", reverse("my_jobs") + f"?page={job_pages}", {}),
        ("my jobs, status DONE", reverse("my_jobs") + "?status=DONE", {}),
        ("job page", reverse("job_detail", args=[job.pk]), {}),
        ("job page, partial (htmx)", reverse("job_detail", args=[job.pk]) + "?partial=panel", htmx),
        ("gallery, page 1", reverse("gallery"), {}),
        # page= for code that pages by number (to compare with an older checkout), before= by cursor
        ("gallery, 3/4 down", reverse("gallery") + f"?page={deep_page}&before={cursor_of(deep)}", {}),
        ("gallery, last page", reverse("gallery") + f"?page={last_page}&before={cursor_of(last)}", {}),
        ("gallery, one workflow", reverse("gallery") + f"?workflow={history['workflow']}", {}),
    ]


def measure(history: dict, repeat: int) -> dict:
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(history["user"])
    figures = {}
    for name, url, headers in pages(history):
        for _ in range(3):  # warm: templates compiled, the session read once
            response = client.get(url, **headers)
            assert response.status_code == 200, (url, response.status_code)
        queries = []
        with connection.execute_wrapper(_Recorder(queries)):
            client.get(url, **headers)
        times, cpu = [], []
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.thread_time()
            client.get(url, **headers)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
        figures[name] = {
            "p50": percentile(times, 50),
            "p95": percentile(times, 95),
            "max": max(times),
            "cpu": percentile(cpu, 50),
            "queries": len(queries),
            "query_ms": sum(queries),
        }
        print(
            "  {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, Python CPU {cpu:.1f} ms, {queries} queries "
            "taking {query_ms:.1f} ms".format(name=name, **figures[name]),
            flush=True,
        )
    return figures


def profile(history: dict, part: str) -> None:
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(history["user"])
    for name, url, headers in pages(history):
        if part in name:
            client.get(url, **headers)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(5):
                client.get(url, **headers)
            profiler.disable()
            print(f"== {name} (5 requests)")
            pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(30)
            queries = []
            with connection.execute_wrapper(_Recorder(queries, sql=True)):
                client.get(url, **headers)
            for ms, sql in queries:
                print(f"{ms:7.1f} ms  {sql[:600]}")


class _Recorder:
    """Records how long each query of a request took (ms), as an execute wrapper."""

    def __init__(self, into: list, *, sql: bool = False):
        self.into, self.sql = into, sql

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.into.append((ms, sql) if self.sql else ms)


def table(history: dict, results: list[dict]) -> str:
    rows = [("reference loop (ms)", lambda r: f"{r['speed']:.1f}")]
    for name, _url, _headers in pages(history):
        rows.append(
            (
                f"{name}: p50 / p95 ms (CPU), queries",
                lambda r, name=name: "{p50:.1f} / {p95:.1f} ({cpu:.1f}), {queries}".format(**r["pages"][name]),
            )
        )
    return runs_table(rows, results)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs of the user whose pages are asked")
    parser.add_argument("--other-jobs", type=int, default=2_000, help="jobs of another user (some shared)")
    parser.add_argument("--repeat", type=int, default=50, help="requests per page and run")
    parser.add_argument("--runs", type=int, default=1, help="measure every page this many times")
    parser.add_argument("--profile", default="", help="print where the time of the pages whose name has this goes")
    add_database_argument(parser)
    args = parser.parse_args(argv)
    os.environ.update(PRODUCTION_ENV)
    os.environ.setdefault("MEDIA_ROOT", "/tmp/comfyportal-bench-pages-media")
    setup(args.database_url)
    start = time.perf_counter()
    history = make_history(args.jobs, args.other_jobs)
    print(f"history of {args.jobs} + {args.other_jobs} jobs made in {time.perf_counter() - start:.1f} s", flush=True)
    if args.profile:
        profile(history, args.profile)
        return 0
    results = []
    for run in range(args.runs):
        print(f"run {run + 1} …", flush=True)
        results.append({"speed": reference_loop_ms(), "pages": measure(history, args.repeat)})
    print(table(history, results))
    slow = [name for r in results for name, f in r["pages"].items() if f["p95"] >= 100]
    if slow:
        print("p95 at or over 100 ms: " + ", ".join(sorted(set(slow))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
