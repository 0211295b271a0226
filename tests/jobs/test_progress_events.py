"""Issue 22: a job's live progress goes out at most every PROGRESS_EVENT_GAP, the latest last.

A fast workflow's nodes run milliseconds apart; each event costs the runner a publish and the
web tier a relay. The database batch still gets every update (it keeps the latest)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from jobs.follower import PROGRESS_EVENT_GAP, JobFollower
from nodes.comfy.follow import Progress


class Link:
    def __init__(self):
        self.events: list[float] = []
        self.recorded: list[float] = []

    def record_progress(self, job_id, fraction, text):
        self.recorded.append(fraction)

    async def send_event(self, user_id, payload):
        self.events.append(payload["progress"])


def follower(link: Link) -> JobFollower:
    return JobFollower(link, SimpleNamespace(pk="job-1", node=None, user_id=7))


async def test_progress_in_quick_succession_sends_the_first_at_once_and_the_latest_after_the_gap():
    link = Link()
    job = follower(link)
    for fraction in (0.1, 0.2, 0.3, 0.4):
        await job._on_progress(Progress(fraction=fraction, text=""))
    assert link.events == [0.1] and link.recorded == [0.1, 0.2, 0.3, 0.4]
    await asyncio.sleep(PROGRESS_EVENT_GAP * 1.5)
    assert link.events == [0.1, 0.4]  # 0.2 and 0.3 were superseded before they went out


async def test_progress_held_when_the_job_ends_is_not_sent_after_its_end():
    link = Link()
    job = follower(link)
    await job._on_progress(Progress(fraction=0.1, text=""))
    await job._on_progress(Progress(fraction=0.5, text=""))
    job._drop_held_progress()  # what the job's end does
    await asyncio.sleep(PROGRESS_EVENT_GAP * 1.5)
    assert link.events == [0.1]


async def test_progress_spaced_wider_than_the_gap_all_goes_out():
    link = Link()
    job = follower(link)
    for fraction in (0.1, 0.2):
        await job._on_progress(Progress(fraction=fraction, text=""))
        await asyncio.sleep(PROGRESS_EVENT_GAP * 1.2)
    assert link.events == [0.1, 0.2]
