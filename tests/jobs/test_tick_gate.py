"""A job's progress ticks go out at most once per interval: the latest waits, the end drops it."""

from __future__ import annotations

import asyncio
import time

from jobs.notify import TickGate

INTERVAL = 0.2


def gate_and_sent(interval: float = INTERVAL) -> tuple[TickGate, list[tuple[float, dict]]]:
    sent: list[tuple[float, dict]] = []

    async def send(payload: dict) -> None:
        sent.append((time.monotonic(), payload))

    return TickGate(send, interval), sent


def tick(progress: float) -> dict:
    return {"id": "job", "event": "progress", "progress": progress}


def test_ticks_of_a_fast_job_are_never_sent():
    async def scenario():
        gate, sent = gate_and_sent()
        for progress in (0.0, 0.5, 1.0):
            await gate.offer(tick(progress))
        # The node is done long before the interval ends: close with no await between, so a
        # stall of the machine (a loaded CI runner) cannot let the interval pass first.
        gate.close()
        await asyncio.sleep(INTERVAL * 1.5)
        return sent

    assert asyncio.run(scenario()) == []


def test_the_latest_tick_of_an_interval_goes_out_at_its_end():
    async def scenario():
        gate, sent = gate_and_sent()
        started = time.monotonic()
        for progress in (0.1, 0.2, 0.3):
            await gate.offer(tick(progress))
        await asyncio.sleep(INTERVAL * 1.5)
        gate.close()
        return started, sent

    started, sent = asyncio.run(scenario())
    assert [payload["progress"] for _, payload in sent] == [0.3]
    assert sent[0][0] - started >= INTERVAL * 0.95


def test_a_tick_after_a_quiet_interval_goes_out_at_once_and_a_steady_stream_is_paced():
    async def scenario():
        gate, sent = gate_and_sent()
        await asyncio.sleep(INTERVAL * 1.2)
        await gate.offer(tick(0.1))  # nothing sent for a whole interval: no wait
        sent_by_the_offer = len(sent)
        for step in range(2, 40):  # a tick every 20 ms for ~0.8 s
            await asyncio.sleep(0.02)
            await gate.offer(tick(step / 40))
        await asyncio.sleep(INTERVAL * 1.5)
        gate.close()
        return sent_by_the_offer, sent

    sent_by_the_offer, sent = asyncio.run(scenario())
    assert sent_by_the_offer == 1
    progress = [payload["progress"] for _, payload in sent]
    assert progress == sorted(progress) and progress[-1] == 39 / 40  # the last word is kept
    gaps = [b - a for (a, _), (b, _) in zip(sent, sent[1:])]
    assert gaps and min(gaps) >= INTERVAL * 0.95  # never two within an interval
    # ~0.8 s of ticks, one per 0.2 s: neither all 39 nor one (the gaps above bound it from
    # above by the time the loop really took, which a loaded machine stretches)
    assert 3 <= len(sent) < 20


def test_a_zero_interval_sends_every_tick():
    async def scenario():
        gate, sent = gate_and_sent(interval=0)
        for progress in (0.1, 0.2, 0.3):
            await gate.offer(tick(progress))
        gate.close()
        return sent

    assert [payload["progress"] for _, payload in asyncio.run(scenario())] == [0.1, 0.2, 0.3]
