"""What a submit tells, in one Redis round trip: the owner's sockets, a runner, the runner check."""

from __future__ import annotations

import asyncio

import pytest
import redis
from channels.layers import get_channel_layer

from core.redis_client import shared_redis
from jobs.notify import NODES_FULL_KEY, WAKE_KEY, announce_new_job, user_group
from jobs.supervision import RUNNER_CHECK_KEY
from tests.factories import make_workflow


@pytest.fixture
def clean_keys():
    client = shared_redis()
    client.delete(WAKE_KEY, NODES_FULL_KEY, RUNNER_CHECK_KEY)
    yield client
    client.delete(WAKE_KEY, NODES_FULL_KEY, RUNNER_CHECK_KEY)


async def test_one_round_trip_reaches_the_owners_socket_wakes_a_runner_and_takes_the_turn(settings, clean_keys):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "cp:announce-test:asgi"},
        }
    }
    layer = get_channel_layer()
    socket = await layer.new_channel()
    await layer.group_add(user_group(7), socket)
    try:

        def announce():
            return announce_new_job(7, {"id": "job-a", "status": "QUEUED"}, turn_key=RUNNER_CHECK_KEY, turn_seconds=5)

        assert await asyncio.to_thread(announce) is True  # this submit checks the runners
        assert await asyncio.wait_for(layer.receive(socket), 2) == {
            "type": "job.update",
            "job": {"id": "job-a", "status": "QUEUED"},
        }
        assert clean_keys.lrange(WAKE_KEY, 0, -1) == [b"job"]
        clean_keys.set(NODES_FULL_KEY, "runner-1", ex=2)  # every slot taken: a new job wakes nobody
        assert await asyncio.to_thread(announce) is False  # the next one finds the turn taken
        assert await asyncio.wait_for(layer.receive(socket), 2)
        assert clean_keys.llen(WAKE_KEY) == 1 and 0 < clean_keys.ttl(RUNNER_CHECK_KEY) <= 5
    finally:
        await layer.flush()


@pytest.mark.django_db
def test_only_the_submit_that_takes_the_turn_checks_the_runners(
    alice_api, clean_keys, monkeypatch, django_capture_on_commit_callbacks
):
    make_workflow("tiny")
    checks = []
    monkeypatch.setattr("jobs.services.ensure_runners", lambda force=False: checks.append(force) or 0)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}}).status_code == 201
    assert checks == [True]
    clean_keys.delete(RUNNER_CHECK_KEY)  # a few seconds later
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}})
    assert checks == [True, True]


async def test_without_redis_a_submit_announces_nothing_and_fails_nothing(settings, monkeypatch):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "cp:announce-test:asgi"},
        }
    }

    def down(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(redis.client.Pipeline, "execute", down)
    assert (
        await asyncio.to_thread(announce_new_job, 7, {"id": "job-a"}, turn_key=RUNNER_CHECK_KEY, turn_seconds=5)
        is False
    )  # the job row is the truth; the tick dispatches it
