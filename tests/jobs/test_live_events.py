"""/ws/jobs/ delivers events while the web instance is busy with sync work."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from jobs.notify import user_group
from tests.conftest import communicator


@pytest.mark.django_db(transaction=True)
async def test_progress_event_is_not_held_back_by_busy_sync_views(ws_user, settings):
    """Django's sync views share one thread; an event must not wait for it to be free."""
    settings.EVENT_TIMESTAMPS = True  # the benchmarks' latency split: the web tier stamps its hop
    comm = communicator(f"/ws/jobs/?token={ws_user.token}")
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "synced"  # the (empty) snapshot
    busy = asyncio.create_task(sync_to_async(time.sleep)(3))  # like a long request in the sync thread
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await get_channel_layer().group_send(
        user_group(ws_user.pk),
        {"type": "job.update", "job": {"id": "x", "event": "progress", "progress": 0.5, "sent_at": time.time()}},
    )
    message = await comm.receive_json_from(timeout=2)
    assert message["job"]["progress"] == 0.5 and "relayed_at" in message["job"]
    assert time.monotonic() - started < 1.5, "the event waited for the sync thread"
    await busy
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_events_carry_no_benchmark_timestamps_unless_turned_on(ws_user, settings):
    assert settings.EVENT_TIMESTAMPS is False  # the default
    comm = communicator(f"/ws/jobs/?token={ws_user.token}")
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "synced"  # the (empty) snapshot
    event = {"id": "x", "event": "progress", "progress": 0.5, "sent_at": 1.0}
    await get_channel_layer().group_send(user_group(ws_user.pk), {"type": "job.update", "job": event})
    assert (await comm.receive_json_from(timeout=2))["job"] == event  # relayed as it came, no relayed_at
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_event_during_the_catch_up_comes_after_synced_and_every_socket_of_the_user_gets_it(
    ws_user, monkeypatch
):
    import threading

    from jobs import catchup

    release = threading.Event()
    real = catchup.catch_up_many

    def slow(*args):
        release.wait(5)
        return real(*args)

    monkeypatch.setattr("jobs.catchup_batch.catch_up_many", slow)
    sockets = [communicator(f"/ws/jobs/?token={ws_user.token}") for _ in range(3)]
    for comm in sockets:
        assert (await comm.connect())[0]
    # Joined and waiting for the catch-up: the event is held until after `synced`.
    await get_channel_layer().group_send(user_group(ws_user.pk), {"type": "job.update", "job": {"id": "x", "seq": 9}})
    await asyncio.sleep(0.1)
    release.set()
    for comm in sockets:
        assert (await comm.receive_json_from(timeout=5))["type"] == "synced"
        assert await comm.receive_json_from(timeout=2) == {"type": "job", "job": {"id": "x", "seq": 9}}
    await get_channel_layer().group_send(user_group(ws_user.pk), {"type": "user.blocked"})
    for comm in sockets:
        assert await comm.receive_json_from(timeout=2) == {"type": "blocked"}
        assert (await comm.receive_output(timeout=2))["code"] == 4403
        await comm.disconnect()


def test_progress_ticks_superseded_by_a_later_event_of_the_same_job_are_dropped():
    from jobs.consumers import without_superseded_ticks

    def tick(job, progress):
        return {"type": "job.update", "job": {"id": job, "event": "progress", "progress": progress}}

    def change(job, seq, status="RUNNING"):
        return {"type": "job.update", "job": {"id": job, "seq": seq, "status": status}}

    blocked = {"type": "user.blocked"}
    messages = [tick("a", 0.1), change("b", 4), tick("a", 0.2), tick("b", 0.5), change("a", 5, "DONE"), blocked]
    messages += [change("b", 6), tick("b", 0.9)]
    assert without_superseded_ticks(messages) == [
        change("b", 4),  # numbered changes are never dropped
        change("a", 5, "DONE"),
        blocked,
        change("b", 6),
        tick("b", 0.9),  # the last word on b's progress
    ]
