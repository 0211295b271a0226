"""Upload starvation: does one user's flood of costly uploads slow everyone else down?

    python -m bench.uploads [--seconds 30] [--senders 4]

Starts one web instance (daphne, the default WEB_REQUEST_THREADS=2 and API_RATE_LIMIT=120)
on PostgreSQL + Redis. A PNG of ~140 KB that declares 6300×6300 pixels (the most
UPLOAD_MAX_PIXELS allows) takes seconds to decode, normalize and thumbnail. First five other
users' `GET /api/me` are timed alone, each user twice a second (within their rate limit);
then again while `--senders` connections of one user post that PNG to `/api/uploads` back to
back, as fast as the server lets them (a 429 is answered at once and the sender goes on).
Prints p50 / p95 / max of `GET /api/me` in both phases and the uploads' statuses; exits
non-zero if the p95 under uploads is 200 ms or more, or any answer was not 200/201/429.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import add_database_argument, setup  # noqa: E402

PASSWORD = "uploads-password-123"
TARGET_P95_MS = 200.0


def costly_png() -> bytes:
    """6300×6300 declared, ~140 KB of PNG: horizontal bands compress to almost nothing."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (6300, 6300), (30, 60, 90))
    draw = ImageDraw.Draw(image)
    for y in range(0, 6300, 9):
        draw.line([(0, y), (6299, y)], fill=((y * 7) % 256, (y * 3) % 256, 120))
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def poll_me(client, url: str, token: str, stop: threading.Event, latencies: list[float], statuses: dict) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        status = client.get(url + "/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.5)


def send_uploads(client, url: str, token: str, data: bytes, stop: threading.Event, statuses: dict, lock) -> None:
    # The body built once: the senders share this process's interpreter with the timed requests.
    request = client.build_request(
        "POST",
        url + "/api/uploads",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("big.png", data, "image/png")},
        data={"kind": "image"},
    )
    body, headers = request.read(), request.headers
    while not stop.is_set():
        response = client.post(url + "/api/uploads", content=body, headers=headers)
        with lock:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 429:
            time.sleep(0.05)  # the answer came at once; go again (no back-off: as fast as allowed)


def summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[int(len(ordered) * 0.95) - 1],
        "max": ordered[-1],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--senders", type=int, default=4)
    add_database_argument(parser)
    args = parser.parse_args(argv)
    setup(args.database_url)
    import httpx

    from accounts.models import User
    from tests.harness import Stack

    watchers = [f"other-{n}" for n in range(5)]
    for name in ("uploader", *watchers):
        user = User(username=name)
        user.set_password(PASSWORD)
        user.save()
    data = costly_png()
    env = {"API_RATE_LIMIT": "120", "LOG_LEVEL": "WARNING"}
    with Stack(nodes=0, webs=1, workers=0, env=env) as stack, httpx.Client(timeout=60) as client:
        url = stack.web_url
        tokens = {
            name: client.post(url + "/api/auth/token", json={"username": name, "password": PASSWORD}).json()["access"]
            for name in ("uploader", *watchers)
        }
        started = time.perf_counter()
        first = client.post(
            url + "/api/uploads",
            headers={"Authorization": f"Bearer {tokens['uploader']}"},
            files={"file": ("big.png", data, "image/png")},
            data={"kind": "image"},
        )
        one_upload = time.perf_counter() - started
        assert first.status_code == 201, first.text

        rows = []
        for phase in ("alone", "under uploads"):
            stop, lock = threading.Event(), threading.Lock()
            latencies: list[float] = []
            me_statuses: dict[int, int] = {}
            upload_statuses: dict[int, int] = {}
            threads = [
                threading.Thread(target=poll_me, args=(client, url, tokens[name], stop, latencies, me_statuses))
                for name in watchers
            ]
            if phase == "under uploads":
                threads += [
                    threading.Thread(
                        target=send_uploads,
                        args=(httpx.Client(timeout=60), url, tokens["uploader"], data, stop, upload_statuses, lock),
                    )
                    for _ in range(args.senders)
                ]
            for thread in threads:
                thread.start()
            time.sleep(args.seconds)
            stop.set()
            for thread in threads:
                thread.join()
            rows.append({"phase": phase, **summary(latencies), "me": me_statuses, "uploads": upload_statuses})

    print(f"PNG: {len(data) / 1024:.0f} KB declaring 6300×6300; one upload alone: {one_upload:.2f} s")
    print(f"{args.senders} senders of one user, {args.seconds} s per phase, API_RATE_LIMIT=120/min")
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    print("| GET /api/me of other users | requests | p50 | p95 | max | their answers | uploads answered |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for row in rows:
        uploads = ", ".join(f"{s}: {n}" for s, n in sorted(row["uploads"].items())) or "—"
        me = ", ".join(f"{s}: {n}" for s, n in sorted(row["me"].items()))
        print(
            f"| {row['phase']} | {row['count']} | {row['p50']:.0f} ms | {row['p95']:.0f} ms | "
            f"{row['max']:.0f} ms | {me} | {uploads} |"
        )
        ok = ok and set(row["me"]) == {200} and set(row["uploads"]) <= {201, 429}
    ok = ok and rows[-1]["p95"] < TARGET_P95_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
