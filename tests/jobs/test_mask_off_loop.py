"""A large mask is prepared off the runner's event loop: the other jobs it follows keep flowing."""

from __future__ import annotations

import asyncio
import io
import time
from types import SimpleNamespace

import numpy as np
from PIL import Image

from jobs import transfer
from jobs.follower import JobFollower
from nodes.comfy.follow import Progress

TICK = 0.01  # another job's node reports progress this often
ALLOWED_DELAY = 0.05


def large_mask() -> bytes:
    """4096×4096, a painted square and scattered strokes (what grow has to work through)."""
    pixels = np.zeros((4096, 4096), dtype=np.uint8)
    pixels[1000:3000, 1200:2800] = 255
    rng = np.random.default_rng(7)
    pixels[rng.integers(0, 4096, 4000), rng.integers(0, 4096, 4000)] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    return buffer.getvalue()


class Node:
    """Takes uploads at once: only the mask's preparation takes time."""

    def __init__(self):
        self.uploads: list[str] = []

    async def upload_image(self, data: bytes, name: str, *, overwrite: bool):
        self.uploads.append(name)
        return SimpleNamespace(ref=name)


class Runner:
    """The runner as a follower sees it (RunnerLink), recording when each event goes out."""

    id = "runner-test"
    cancelling: set[str] = set()

    def __init__(self):
        self.sent_at: list[float] = []

    async def send_event(self, user_id: int, payload: dict) -> None:
        self.sent_at.append(time.perf_counter())

    def record_progress(self, job_id: str, fraction: float, text: str) -> None:
        pass


async def longest_progress_gap_while_a_mask_is_prepared(data: bytes) -> tuple[float, list[str]]:
    runner, node = Runner(), Node()
    other_job = SimpleNamespace(pk=1, node=None, user_id=7)
    masked_job = SimpleNamespace(
        pk=2, workflow=SimpleNamespace(spec={"inputs": [{"id": "m", "type": "mask", "grow": 64}]})
    )
    records = {"m": (SimpleNamespace(pk=3, width=4096, height=4096), data)}
    preparing = True

    async def other_jobs_progress():
        follower, step = JobFollower(runner, other_job), 0
        while True:  # one more event once the mask is ready: the last gap counts too
            step += 1
            await follower._on_progress(Progress(fraction=0.5, text=f"KSampler {step}/1000"))
            if not preparing:
                return
            await asyncio.sleep(TICK)

    ticker = asyncio.create_task(other_jobs_progress())
    await asyncio.sleep(5 * TICK)
    await transfer.upload_inputs(node, masked_job, records)
    preparing = False
    await ticker
    return max(b - a for a, b in zip(runner.sent_at, runner.sent_at[1:], strict=False)), node.uploads


async def test_another_jobs_progress_is_not_held_up_while_a_4096_mask_with_grow_64_is_prepared(settings):
    settings.PROGRESS_EVENT_INTERVAL = 0  # every tick goes out at once: their gaps are the loop's
    data = large_mask()
    # The machine may be busy with other processes for a moment: the best of three attempts
    # counts. On the event loop, the preparation holds every attempt up for far longer.
    gaps = []
    for _ in range(3):
        gap, uploads = await longest_progress_gap_while_a_mask_is_prepared(data)
        assert uploads == ["cp_3_x_mask.png"]
        gaps.append(gap)
        if gap <= ALLOWED_DELAY + TICK:
            break
    assert min(gaps) <= ALLOWED_DELAY + TICK, f"progress events held up for {[round(g, 3) for g in gaps]} s"
