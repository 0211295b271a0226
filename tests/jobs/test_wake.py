"""Wake-ups for the runners: a new job wakes one only while some node slot may be free."""

from __future__ import annotations

from core.redis_client import shared_redis
from jobs.notify import FREE_SLOT, NEW_JOB, NODES_FULL_KEY, WAKE_KEY, wake_dispatch
from nodes.models import ComfyNode
from nodes.signals import node_came_online


def test_new_job_skips_the_wake_up_while_every_slot_is_taken():
    client = shared_redis()
    client.delete(WAKE_KEY, NODES_FULL_KEY)
    try:
        wake_dispatch(NEW_JOB)
        assert client.lrange(WAKE_KEY, 0, -1) == [b"job"]
        client.set(NODES_FULL_KEY, "runner-1", ex=2)  # a runner's last dispatch filled every slot
        wake_dispatch(NEW_JOB)
        assert client.llen(WAKE_KEY) == 1
        wake_dispatch(FREE_SLOT)  # a node came online, a job was requeued: always worth a look
        assert client.lrange(WAKE_KEY, 0, -1) == [b"slot", b"job"]
        client.delete(NODES_FULL_KEY)
        wake_dispatch(NEW_JOB)
        assert client.llen(WAKE_KEY) == 3
    finally:
        client.delete(WAKE_KEY, NODES_FULL_KEY)


def test_a_node_coming_online_wakes_a_runner_even_while_slots_seemed_full():
    client = shared_redis()
    client.delete(WAKE_KEY, NODES_FULL_KEY)
    try:
        client.set(NODES_FULL_KEY, "runner-1", ex=2)
        node_came_online.send(sender=ComfyNode, node_id=1)
        assert client.lrange(WAKE_KEY, 0, -1) == [b"slot"]
    finally:
        client.delete(WAKE_KEY, NODES_FULL_KEY)
