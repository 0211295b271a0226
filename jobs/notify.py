"""Tell people what changed: job events to Channels groups, wake-ups to the runners.

The job row is the truth; these messages only notify. Group `user_<id>` carries every job
event of a user; /ws/jobs/ listens to it (a user's page filters by job id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from core import channel_batch
from core.redis_client import shared_redis, shared_script

logger = logging.getLogger("comfyportal.jobs")

WAKE_KEY = f"{settings.REDIS_PREFIX}:dispatch:wake"
# Set (for 2 s, refreshed) by a runner whose last dispatch left no node slot free.
NODES_FULL_KEY = f"{settings.REDIS_PREFIX}:dispatch:full"

# A new job cannot start while every slot is taken, and the runner that frees a slot
# dispatches anyway: during a burst of submits, skip the thousand pointless wake-ups.
WAKE_SCRIPT = """
if ARGV[1] == 'job' and redis.call('exists', KEYS[2]) == 1 then return 0 end
redis.call('lpush', KEYS[1], ARGV[1])
redis.call('ltrim', KEYS[1], 0, 31)
return 1
"""


def user_group(user_id: int) -> str:
    return f"user_{user_id}"


NEW_JOB = "job"  # a job was submitted: worth dispatching only if some node has a free slot
FREE_SLOT = "slot"  # capacity may have appeared: a node came online, a job was requeued or ended


def wake_dispatch(reason: str = FREE_SLOT) -> None:
    """Wake a runner now (for a new job only if some node slot may be free)."""
    try:
        shared_script(WAKE_SCRIPT)(keys=[WAKE_KEY, NODES_FULL_KEY], args=[reason])
    except redis.RedisError as exc:  # the periodic tick dispatches anyway
        logger.warning("could not wake the dispatcher: %s", exc)


def announce_new_job(user_id: int, payload: dict, *, turn_key: str, turn_seconds: int) -> bool:
    """What a submit tells, in one Redis round trip instead of three: wake a runner (if a node
    slot may be free), publish the new job to its owner's sockets, and take the turn `turn_key`
    (held `turn_seconds`). Returns whether this call took the turn."""
    if not channel_batch.available():
        wake_dispatch(NEW_JOB)
        send_job_event(user_id, payload)
        try:
            return bool(shared_redis().set(turn_key, 1, nx=True, ex=turn_seconds))
        except redis.RedisError:
            return False
    pipe = shared_redis().pipeline(transaction=False)
    # EVAL, not a registered script: in a pipeline, redis-py checks registered scripts with an
    # extra SCRIPT EXISTS round trip every time. Redis keeps the compiled script either way.
    pipe.eval(WAKE_SCRIPT, 2, WAKE_KEY, NODES_FULL_KEY, NEW_JOB)
    channel_batch.add_group_send(pipe, user_group(user_id), job_update(payload))
    pipe.set(turn_key, 1, nx=True, ex=turn_seconds)
    try:
        return bool(pipe.execute()[-1])
    except redis.RedisError as exc:  # the periodic tick dispatches anyway; the job row is the truth
        logger.warning("could not announce a new job: %s", exc)
        return False


def job_update(payload: dict) -> dict:
    """The Channels message that carries a job event to the consumers of /ws/jobs/."""
    return {"type": "job.update", "job": payload}


async def send_job_event_async(user_id: int, payload: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(user_group(user_id), job_update(payload))
    except Exception as exc:  # a notification must never break a job
        logger.warning("could not send a job event: %s", exc)


def send_job_event(user_id: int, payload: dict) -> None:
    """Send a job event from sync code (a request thread)."""
    async_to_sync(send_job_event_async)(user_id, payload)


def uses_pubsub_layer() -> bool:
    """Whether an EventBatcher can publish events (see core.channel_batch)."""
    return channel_batch.available()


class EventBatcher:
    """Job events from one event loop (the runner's), published in batches.

    Every event ready at the same moment goes out in one Redis round trip (see
    core.channel_batch) instead of one round trip each behind the channel layer's lock, where
    the progress events of many busy nodes would queue behind each other.

    With EVENT_TIMESTAMPS on (benchmarks), a progress event carries `sent_at` (queued here)
    and `published_at` (sent to Redis); the web tier's consumer adds `relayed_at`.
    """

    def __init__(self, redis_client):
        self.redis = redis_client
        self.pending: list[tuple[int, dict]] = []
        self.ready = asyncio.Event()

    def send(self, user_id: int, payload: dict) -> None:
        """Queue an event (never blocks; events go out in the order they were queued)."""
        if settings.EVENT_TIMESTAMPS and payload.get("event") == "progress":
            payload = {**payload, "sent_at": time.time()}
        self.pending.append((user_id, payload))
        self.ready.set()

    async def run(self) -> None:
        while True:
            await self.ready.wait()
            await self.flush()

    async def flush(self) -> None:
        self.ready.clear()
        batch, self.pending = without_superseded(in_cursor_order(self.pending)), []
        if batch:
            now = time.time()
            pipe = self.redis.pipeline(transaction=False)
            for user_id, payload in batch:
                if "sent_at" in payload:
                    payload = {**payload, "published_at": now}
                channel_batch.add_group_send(pipe, user_group(user_id), job_update(payload))
            try:
                await pipe.execute()
            except Exception as exc:  # a notification must never break a job
                logger.warning("could not send %d job events: %s", len(batch), exc)


class TickGate:
    """One job's progress ticks, at most one per `interval` seconds (PROGRESS_EVENT_INTERVAL).

    A tick inside the interval waits for its end, replaced by any newer one; the job's end
    drops a waiting tick (`close`). The interval counts from the gate's making too (the
    follower's start, just after the claim). A fast node sends several ticks per job (one as each node
    of the graph starts), and every tick costs a Redis message, a relay in each web instance and
    a frame to each socket of the user, more often than a person can read them: a 15 ms job
    sends none, a long one a steady few a second.
    """

    def __init__(self, send: Callable[[dict], Awaitable[None]], interval: float):
        self.send = send
        self.interval = interval
        self.last_sent = time.monotonic()
        self.waiting: dict | None = None
        self.timer: asyncio.Task | None = None
        self.closed = False

    async def offer(self, payload: dict) -> None:
        if self.closed:
            return
        if self.timer is None and time.monotonic() - self.last_sent >= self.interval:
            self.last_sent = time.monotonic()
            await self.send(payload)
            return
        self.waiting = payload
        if self.timer is None:
            self.timer = asyncio.create_task(self._send_at_interval_end())

    async def _send_at_interval_end(self) -> None:
        await asyncio.sleep(max(0.0, self.last_sent + self.interval - time.monotonic()))
        payload, self.waiting, self.timer = self.waiting, None, None
        if payload is not None and not self.closed:
            self.last_sent = time.monotonic()
            await self.send(payload)

    def close(self) -> None:
        """The job ends (or leaves this runner): its waiting tick is stale, drop it."""
        self.closed = True
        self.waiting = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def superseded_ticks(jobs: list[dict | None]) -> set[int]:
    """The places of the progress ticks (no `seq`: informative, never resumed from) that a
    later event of the same job in `jobs` supersedes; None stands for a message about no job.
    A tick that arrives together with a newer word on its job is worth no one's time."""
    later: set = set()
    dropped = set()
    for index in range(len(jobs) - 1, -1, -1):
        job = jobs[index]
        if job is None:
            continue
        if job.get("event") == "progress" and job.get("seq") is None and job.get("id") in later:
            dropped.add(index)
        later.add(job.get("id"))
    return dropped


def without_superseded(batch: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """A batch of (user id, event) without its superseded progress ticks: the web tier would
    receive, decode and then drop them (core.ws_fanout), and nothing is gained by waiting."""
    dropped = superseded_ticks([payload for _, payload in batch])
    return [item for index, item in enumerate(batch) if index not in dropped] if dropped else batch


def in_cursor_order(batch: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """A batch of (user id, event) with each user's numbered events (those with a `seq`, see
    jobs.cursors) put in number order, in the places they held; the rest stay where they are.

    Two jobs of one user ending at the same moment finish in the runner's database threads in
    either order; a client that saw the later number and dropped before the earlier one
    arrived would resume past it (docs/live-events.md)."""
    places: dict[int, list[int]] = {}
    for index, (user_id, payload) in enumerate(batch):
        if payload.get("seq") is not None:
            places.setdefault(user_id, []).append(index)
    ordered = list(batch)
    for indexes in places.values():
        events = sorted((batch[i] for i in indexes), key=lambda item: item[1]["seq"])
        for index, event in zip(indexes, events):
            ordered[index] = event
    return ordered


def disconnect_user(user_id: int) -> None:
    """Close every WebSocket of a user (they were blocked)."""
    layer = get_channel_layer()
    if layer is not None:
        try:
            async_to_sync(layer.group_send)(user_group(user_id), {"type": "user.blocked"})
        except Exception as exc:
            logger.warning("could not disconnect user %s: %s", user_id, exc)
