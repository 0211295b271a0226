"""Load: GET /api/jobs/{id} and GET /api/workflows under 200 concurrent clients.

    python -m bench.load [--seconds 60] [--clients 200]

Starts 2 web instances (daphne) against PostgreSQL + Redis and drives them with wrk
(Debian package `wrk`; installed with apt-get when missing), 100 connections each. Runs
once with the rate limit off (raw capacity) and once with the default API_RATE_LIMIT
(everything beyond the limit must be 429 with Retry-After, nothing else).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, setup  # noqa: E402

PASSWORD = "load-password-123"


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
        path = shutil.which("wrk")
    return path


def run_wrk(url: str, token: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        [
            ensure_wrk(),
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "bench" / "status_count.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_TOKEN": token},
        check=True,
    ).stdout
    result = {
        "statuses": {},
        "p50": 0.0,
        "p99": 0.0,
        "requests": 0,
        "seconds": 0.0,
        "socket_errors": "Socket errors" in out,
    }
    for line in out.splitlines():
        if line.startswith("STATUS "):
            for part in filter(None, line[7:].split(",")):
                status, n = part.split("=")
                result["statuses"][int(status)] = int(n)
        elif line.startswith("LATENCY "):
            fields = dict(p.split("=") for p in line[8:].split())
            result["p50"], result["p99"] = float(fields["p50"]), float(fields["p99"])
        elif line.startswith("TOTAL "):
            fields = dict(p.split("=") for p in line[6:].split())
            result["requests"], result["seconds"] = int(fields["requests"]), float(fields["seconds"])
    return result


def load(paths: list[str], stack, token: str, seconds: int, clients: int) -> list[dict]:
    rows = []
    for path in paths:
        results: list[dict] = []
        threads = [
            threading.Thread(
                target=lambda url=url: results.append(
                    run_wrk(url + path, token, seconds, clients // len(stack.web_urls))
                )
            )
            for url in stack.web_urls
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses: dict[int, int] = {}
        for r in results:
            for status, n in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        requests = sum(r["requests"] for r in results)
        rows.append(
            {
                "path": path,
                "rps": requests / max(r["seconds"] for r in results),
                "p50": max(r["p50"] for r in results),
                "p99": max(r["p99"] for r in results),
                "statuses": statuses,
                "socket_errors": any(r["socket_errors"] for r in results),
            }
        )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=200)
    add_database_argument(parser)
    args = parser.parse_args(argv)
    setup(args.database_url)
    import httpx

    from accounts.models import User
    from jobs.models import Job
    from tests.factories import make_workflow
    from tests.harness import Stack

    user = User(username="load")
    user.set_password(PASSWORD)
    user.save()
    job = Job.objects.create(user=user, workflow=make_workflow(), status="DONE")
    paths = [f"/api/jobs/{job.pk}", "/api/workflows"]
    report = []
    for label, limit in (("rate limit off", "0"), ("API_RATE_LIMIT=120/min", "120")):
        with Stack(
            nodes=0, webs=2, workers=0, env={"API_RATE_LIMIT": limit, "LOG_LEVEL": "WARNING", "DB_POOL_SIZE": "20"}
        ) as stack:
            token = httpx.post(
                stack.web_url + "/api/auth/token", json={"username": "load", "password": PASSWORD}
            ).json()["access"]
            for row in load(paths, stack, token, args.seconds, args.clients):
                report.append({"mode": label, **row})
    print("| mode | endpoint | req/s | p50 | p99 | statuses |")
    print("|---|---|---|---|---|---|")
    ok = True
    for row in report:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(row["statuses"].items()))
        print(
            f"| {row['mode']} | GET {row['path'].replace(str(job.pk), '{id}')} | {row['rps']:.0f} | "
            f"{row['p50']:.1f} ms | {row['p99']:.1f} ms | {statuses}{' (socket errors)' if row['socket_errors'] else ''} |"
        )
        allowed = {200, 429} if row["mode"] != "rate limit off" else {200}
        ok = ok and set(row["statuses"]) <= allowed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
