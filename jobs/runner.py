"""The job runner: one asyncio loop in a worker process that dispatches and follows many jobs.

Following a job is mostly waiting on a socket, so one process follows every job it has
claimed at once (hundreds), instead of pinning a process per job. Each loop turn:

1. `dispatch()` records which nodes finished a prompt and claims queued jobs for free node
   slots; each gets a `JobFollower` task (`jobs.follower`), which runs it on its node;
2. beside dispatch, every second: announce presence, heartbeat our jobs, act on cancel requests;
3. beside dispatch, every few seconds: adopt RUNNING jobs whose runner died (stale heartbeat),
   and start runners if some are missing (`jobs.supervision`);
4. every NODE_HEALTH_INTERVAL: health-check all nodes (one runner at a time, by a lock).

It ends when its lease does (it finishes the jobs it holds, claiming none) or, when its worker
stops, at once: `hand_over_now()` gives its jobs to the other runners (`jobs.supervision`).

The followers' progress and "node accepted the prompt" times are written in batches, twice a
second. Several runners (in several qcluster processes or machines) may run at once: the
database decides who owns what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import redis.asyncio as aioredis
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections

from jobs import metrics, steps
from jobs.follower import JobFollower, cancel_on_node
from jobs.models import Job
from jobs.notify import NODES_FULL_KEY, WAKE_KEY, EventBatcher, send_job_event_async, uses_pubsub_layer
from jobs.scheduler import dispatch, mark_node_finished
from jobs.supervision import HANDOVER_KEY, PRESENCE_TTL, RUNNER_KEY, cluster_stopping, ensure_runners
from nodes.comfy.client import ComfyClient
from nodes.health import CLIENT_ID_PREFIX, check_nodes_async, remove_drained_nodes
from nodes.models import ComfyNode

logger = logging.getLogger("comfyportal.jobs")

PROGRESS_DB_INTERVAL = 0.5  # progress is written twice a second, one UPDATE for all jobs (live
# progress goes over /ws/jobs/ at once; the row serves page loads and the polling fallback)
# A freed slot's refill waits for the dispatch pace at most this share of the prompt that freed it.
REFILL_WITHIN_SHARE = 0.5
# ...less what the refill itself takes (a step, then the prompt's POST) on a busy machine:
# half of a 15 ms prompt is less than that, and the node would run dry.
REFILL_HEADROOM = 0.02


def _dispatch_step(**kwargs):
    """A dispatch step whose started-jobs count is sent by the metrics writer thread, not by
    the database thread the runner's next step may be waiting for."""
    with metrics.in_background():
        return dispatch(**kwargs)


class Runner:
    """Dispatches jobs and follows them, each with a `JobFollower`, which sees the runner
    as a `jobs.follower.RunnerLink`."""

    def __init__(self, *, runner_id: str | None = None, max_jobs: int = 500, health: bool = True):
        self.id = runner_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.max_jobs = max_jobs
        self.health = health
        self.tasks: dict[str, asyncio.Task] = {}
        self.cancelling: set[str] = set()
        self.clients: dict[tuple[str, str], ComfyClient] = {}
        self.wake = asyncio.Event()
        self.progress: dict[str, tuple[float, str]] = {}  # job id → latest progress not yet written
        # job id → when its node accepted the prompt and under which client id, not yet written
        # (with the progress, or with the job's end). Losing it in a crash only makes recovery
        # re-send the prompt (or follow it by polling, without its socket).
        self.submitted: dict[str, tuple[datetime, str]] = {}
        self.node_finished: list[str] = []  # jobs whose node finished the prompt, not yet recorded
        self.slots_freed: set[str] = set()  # jobs still followed whose node slot was freed already
        # The last dispatch step left no runnable job queued, and no submit woke us since: a
        # slot that frees then needs no step (see slot_freed).
        self.queue_empty = False
        # When a freed slot must be refilled by at the latest (monotonic), whatever the pace
        # (see slot_freed); None while no freed slot waits for a step.
        self.refill_by: float | None = None
        self.refill_moved = asyncio.Event()  # set when refill_by comes sooner
        self._checks: set[asyncio.Task] = set()
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="runner-db")
        self._last = {"beat": -1.0, "adopt": 0.0, "health": 0.0, "peers": time.monotonic()}
        self._redis: aioredis.Redis | None = None
        self._health_task: asyncio.Task | None = None
        self._chores_task: asyncio.Task | None = None
        self._full_told_at = 0.0  # when we last set the "all slots full" flag
        self.events: EventBatcher | None = None  # batches job events while serving
        self.stopping = asyncio.Event()  # set by hand_over_now()
        self.handing_over = False
        self._handover_seen: bytes | None = None  # the last HANDOVER_KEY value we acted on

    # --- plumbing ------------------------------------------------------------------------
    async def db(self, fn, /, *args, **kwargs):
        """Run blocking ORM work off the event loop, on a connection that is kept fresh."""

        def call():
            try:
                return fn(*args, **kwargs)
            finally:
                close_old_connections()  # hands the connection back to the pool (PostgreSQL)

        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    def client_for(self, node: ComfyNode) -> ComfyClient:
        key = (node.base_url, node.auth_header)
        if key not in self.clients:
            self.clients[key] = ComfyClient(
                node.base_url,
                auth_header=node.auth_header or None,
                connect_timeout=settings.NODE_CONNECT_TIMEOUT,
                read_timeout=settings.NODE_READ_TIMEOUT,
                keep_sockets=True,  # a prompt never waits for its socket to connect
                client_id_prefix=CLIENT_ID_PREFIX,
            )
        return self.clients[key]

    # --- the loop --------------------------------------------------------------------------
    async def serve(self, *, lease: float | None = None, stop: asyncio.Event | None = None) -> None:
        """Run until the lease ends (or `stop` is set); then finish the jobs in hand and return."""
        deadline = time.monotonic() + lease if lease else None
        self._redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=15, socket_connect_timeout=5)
        listener = asyncio.create_task(self._listen_for_wakeups())
        progress_writer = asyncio.create_task(self._write_running_state())
        stop_watcher = asyncio.create_task(self._watch_cluster_stop())
        if uses_pubsub_layer():
            self.events = EventBatcher(self._redis)
            event_sender = asyncio.create_task(self.events.run())
        logger.info("runner %s started", self.id)
        try:
            last_claim = -1.0
            while (
                not self.stopping.is_set()
                and not (stop is not None and stop.is_set())
                and (deadline is None or time.monotonic() < deadline)
            ):
                # While jobs flow, pace the steps: one claiming several jobs costs the same few
                # queries as one claiming a single job. An idle pool is never made to wait.
                await self._keep_pace(last_claim)
                self.wake.clear()  # before the step: a wake-up during it means "step again"
                self.refill_by = None
                started = time.monotonic()
                try:
                    if await self.step():
                        last_claim = started
                except Exception:  # a database or Redis hiccup must not end the runner
                    logger.exception("runner %s: dispatch step failed; retrying", self.id)
                    await asyncio.sleep(1)
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=settings.DISPATCH_TICK)
                except TimeoutError:
                    pass
            if self.handing_over:
                await self._release_jobs()
            else:
                await self._hand_over()
            while self.tasks:  # the lease is over: finish what we hold, claim nothing new
                await self._record_node_finished(self._take_node_finished())
                await self._beat()
                await asyncio.wait(list(self.tasks.values()), timeout=1.0)
        finally:
            listener.cancel()
            progress_writer.cancel()
            stop_watcher.cancel()
            if self.events is not None:
                event_sender.cancel()
                await self.events.flush()  # the last jobs' endings
            if self._chores_task is not None:
                self._chores_task.cancel()
            await self.close()
            logger.info("runner %s stopped", self.id)

    async def _keep_pace(self, last_claim: float) -> None:
        """Wait out the pause before the next step. A slot freed meanwhile may shorten it: a
        pause begun before (after a submit's wake-up) must not outlast the slot's `refill_by`."""
        while (pause := self._pause_before_step(last_claim)) > 0:
            self.refill_moved.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self.refill_moved.wait()

    def _pause_before_step(self, last_claim: float) -> float:
        """Seconds to wait before the next step: the pace (DISPATCH_MIN_GAP since the last step
        that claimed), cut short so that a freed slot is refilled by its `refill_by`."""
        now = time.monotonic()
        pause = last_claim + settings.DISPATCH_MIN_GAP - now
        if self.refill_by is not None:
            pause = min(pause, self.refill_by - now)
        return pause

    async def step(self) -> int:
        """Dispatch; the periodic chores run beside it (a slot that frees never waits for them).
        Returns how many jobs it claimed."""
        finished = self._take_node_finished()
        claimed = 0
        if len(self.tasks) < self.max_jobs:
            self.queue_empty = False  # a submit during the step clears what it finds
            result = await self.db(_dispatch_step, runner_id=self.id, node_finished=finished)
            # A submit woke us during the step: what it found may be out of date already.
            self.queue_empty = result.queue_empty and bool(result.nodes_seen) and not self.wake.is_set()
            if result.nodes_seen:  # none seen: a peer is dispatching (or none is online); no verdict
                await self._tell_whether_full(result.free_slots == 0)
            if result.contended:  # the peer may have missed the slots we just freed: look again soon
                asyncio.get_running_loop().call_later(settings.DISPATCH_MIN_GAP, self.wake.set)
            for job in result.jobs:
                self.start(job, resume=False)
            claimed = len(result.jobs)
        else:
            await self._record_node_finished(finished)
        if self._chores_task is None or self._chores_task.done():
            self._chores_task = asyncio.create_task(self._chores())
        return claimed

    def _take_node_finished(self) -> list[str]:
        finished, self.node_finished = self.node_finished, []
        return finished

    async def _record_node_finished(self, finished: list[str]) -> None:
        if finished:
            await self.db(mark_node_finished, finished)

    async def _tell_whether_full(self, full: bool) -> None:
        """Let submitters skip waking runners while no slot is free (see notify.WAKE_SCRIPT).

        "Not full" always clears the flag, whichever runner set it: a stale flag would leave
        new jobs waiting for the next tick. "Full" is refreshed at most once a second (the
        flag lives 2 s)."""
        now = time.monotonic()
        if full and now - self._full_told_at < 1.0:
            return
        try:
            if full:
                await self._redis.set(NODES_FULL_KEY, self.id, ex=2)
                self._full_told_at = now
            else:
                await self._redis.delete(NODES_FULL_KEY)
                self._full_told_at = 0.0
        except Exception as exc:  # then submitters wake us for nothing: harmless
            logger.warning("runner %s: cannot record whether nodes are full: %s", self.id, exc)

    async def _chores(self) -> None:
        try:
            await self._do_chores()
        except Exception:  # a database or Redis hiccup: the next step tries again
            logger.exception("runner %s: periodic chores failed", self.id)

    async def _do_chores(self) -> None:
        now = time.monotonic()
        handed_over = False
        if now - self._last["beat"] >= 1.0:
            self._last["beat"] = now
            await self._announce_presence()
            await self._beat()
            handed_over = await self._jobs_handed_over()
        if handed_over or now - self._last["adopt"] >= min(5.0, settings.RUNNER_STALE_AFTER / 2):
            self._last["adopt"] = now
            for job in await self.db(steps.adopt_stale_jobs, runner_id=self.id, following=list(self.tasks)):
                self.start(job, resume=True)
        if now - self._last["peers"] >= 10.0:  # a peer died with its qcluster: replace it
            self._last["peers"] = now
            await asyncio.to_thread(ensure_runners)
        if (
            self.health
            and now - self._last["health"] >= settings.NODE_HEALTH_INTERVAL
            and (self._health_task is None or self._health_task.done())
        ):
            self._last["health"] = now
            self._health_task = asyncio.create_task(self._check_health())  # never blocks dispatch

    async def _check_health(self) -> None:
        try:
            if await self.db(cache.add, "health-lock", self.id, settings.NODE_HEALTH_INTERVAL * 0.9):
                nodes = await self.db(lambda: list(ComfyNode.objects.filter(is_active=True)))
                await self.db(remove_drained_nodes)
                if nodes:
                    await check_nodes_async(nodes, db=self.db, client_for=self.client_for)
        except Exception:
            logger.exception("runner %s: health check failed", self.id)

    async def _hand_over(self) -> None:
        """Stop counting as a live runner and start a successor before finishing our jobs."""
        try:
            await self._redis.delete(RUNNER_KEY + self.id)
        except Exception:
            pass
        await asyncio.to_thread(ensure_runners, force=True)

    # --- stopping with the worker ---------------------------------------------------------------
    def hand_over_now(self) -> None:
        """Stop now and give our jobs to the other runners (the worker is stopping). Safe to
        call from a signal handler installed with loop.add_signal_handler."""
        self.handing_over = True
        self.stopping.set()
        self.wake.set()

    async def _watch_cluster_stop(self) -> None:
        while not cluster_stopping():
            await asyncio.sleep(0.1)
        logger.info("runner %s: the cluster is stopping; handing its jobs over", self.id)
        self.hand_over_now()

    async def _release_jobs(self) -> None:
        """Stop following our jobs and make them nobody's, so that another runner adopts them
        within a second; their prompts run on, on their nodes. Nothing runs twice: the adopter
        follows each prompt again (`JobFollower.run(resume=True)`)."""
        try:
            await self._redis.delete(RUNNER_KEY + self.id)  # no longer counted as alive
        except Exception:
            pass
        for chore in (self._chores_task, self._health_task):  # an adoption would start followers
            if chore is not None:
                chore.cancel()
        # What the followers have not written yet: taken before they stop (stopping drops it).
        progress, self.progress = self.progress, {}
        submitted, self.submitted = self.submitted, {}
        followers = list(self.tasks.values())
        for task in followers:
            task.cancel()  # a follower stopped this way leaves its job RUNNING
        await asyncio.gather(*followers, return_exceptions=True)
        self.tasks.clear()  # nothing left to finish: the jobs are handed over
        # A job's ending already being written (its results, its status) completes before the
        # job changes hands: wait for the database calls in flight, then use a new executor.
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="runner-db")
        try:
            await self.db(steps.write_running_state, progress, submitted)
            await self._record_node_finished(self._take_node_finished())
            released = await self.db(steps.release_jobs, runner_id=self.id)
            if released:
                await self._redis.set(HANDOVER_KEY, f"{self.id}-{time.time()}", ex=60)
        except Exception:  # then the jobs are adopted once their heartbeat is stale, as after a crash
            logger.exception("runner %s: cannot hand its jobs over", self.id)
        await asyncio.to_thread(ensure_runners, force=True)  # successors, if no other runner is alive

    async def _jobs_handed_over(self) -> bool:
        """Has a stopping runner handed jobs over since we last looked?"""
        try:
            value = await self._redis.get(HANDOVER_KEY)
        except Exception:
            return False
        if value is None or value == self._handover_seen:
            return False
        self._handover_seen = value
        return True

    async def _listen_for_wakeups(self) -> None:
        while True:
            try:
                if await self._redis.blpop([WAKE_KEY], timeout=2):
                    self.queue_empty = False
                    self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: the tick still dispatches
                logger.warning("runner %s: wake-up listener: %s", self.id, exc)
                await asyncio.sleep(1)

    async def _announce_presence(self) -> None:
        try:
            await self._redis.set(RUNNER_KEY + self.id, len(self.tasks), ex=PRESENCE_TTL)
        except Exception as exc:
            logger.warning("runner %s: cannot announce itself: %s", self.id, exc)

    async def _beat(self) -> None:
        """Keep our jobs' heartbeats fresh and act on cancel requests."""
        cancel_ids = await self.db(steps.heartbeat, runner_id=self.id, job_ids=list(self.tasks))
        for job_id in cancel_ids:
            if job_id in self.tasks and job_id not in self.cancelling:
                self.cancelling.add(job_id)
                asyncio.create_task(self._cancel(job_id))

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()
        if self._redis is not None:
            try:
                await self._redis.delete(RUNNER_KEY + self.id)
                await self._redis.aclose()
            except Exception:
                pass
        self.executor.shutdown(wait=False)

    # --- the jobs it follows ----------------------------------------------------------------
    def start(self, job: Job, *, resume: bool) -> None:
        job_id = str(job.pk)
        previous = self.tasks.get(job_id)
        self.slots_freed.discard(job_id)  # this attempt's node has not finished yet
        # A job requeued by its own follower can be claimed again before that follower has
        # returned: run the new attempt after it, never beside it and never not at all.
        attempt = JobFollower(self, job).run(resume=resume)
        task = asyncio.create_task(self._after(previous, attempt), name=f"job-{job_id}")
        self.tasks[job_id] = task
        task.add_done_callback(lambda t, job_id=job_id: self._done(job_id, t))

    @staticmethod
    async def _after(previous: asyncio.Task | None, attempt) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        await attempt

    def _done(self, job_id: str, task: asyncio.Task) -> None:
        if self.tasks.get(job_id) is not task:
            return  # a newer attempt of the same job runs on
        was_full = len(self.tasks) >= self.max_jobs
        self.tasks.pop(job_id, None)
        self.cancelling.discard(job_id)
        self.submitted.pop(job_id, None)  # requeued or adopted elsewhere: not ours to write
        # A slot is free: dispatch again now, unless the node's finishing woke a step already
        # (a step costs a few queries: one per job ending would be one more per job).
        if job_id not in self.slots_freed or was_full:
            self.wake.set()
        self.slots_freed.discard(job_id)

    async def _cancel(self, job_id: str) -> None:
        """A user asked to cancel a running job: stop it on its node, then stop following."""
        job = await self.db(steps.load_job, job_id)
        if job is None or job.node is None:
            return
        await cancel_on_node(self.client_for(job.node), job.prompt_id)
        task = self.tasks.get(job_id)
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=8)
        if not done:  # the node did not confirm in time: stop following, it is cancelled
            task.cancel()

    # --- what followers hand over (RunnerLink) ---------------------------------------------------
    def record_progress(self, job_id: str, fraction: float, text: str) -> None:
        self.progress[job_id] = (fraction, text)  # written by _write_running_state

    def record_submitted(self, job_id: str, at: datetime, client_id: str) -> None:
        self.submitted[job_id] = (at, client_id)  # written by _write_running_state

    def slot_freed(self, job_id: str, prompt_seconds: float | None = None) -> None:
        """Let dispatch fill the slot now (and record that the node finished, in the same step).

        `prompt_seconds`: how long the node ran the prompt that freed the slot. The step that
        refills it may wait for the pace (several slots refilled in one step) at most half of
        that, less REFILL_HEADROOM: the node's next prompt of ours, if it was queued, takes
        about as long, and the refill itself takes a step and a POST, so a node that runs fast
        prompts is refilled before it runs dry (one whose prompts run under 40 ms, at once).

        Not when our last step left nothing queued and no submit came since (jobs one at a
        time): that step would find nothing, and the job's end frees the slot anyway. Unless
        the nodes were full: submits made then wake nobody (notify.WAKE_SCRIPT)."""
        self.node_finished.append(job_id)
        self.slots_freed.add(job_id)
        if prompt_seconds is not None:
            due = time.monotonic() + max(0.0, prompt_seconds * REFILL_WITHIN_SHARE - REFILL_HEADROOM)
            if self.refill_by is None or due < self.refill_by:
                self.refill_by = due
                self.refill_moved.set()
        if self.queue_empty and self._redis is not None:
            check = asyncio.create_task(self._wake_if_submits_were_silent())
            self._checks.add(check)  # held until done: the loop keeps only weak references
            check.add_done_callback(self._checks.discard)
        else:
            self.wake.set()

    async def _wake_if_submits_were_silent(self) -> None:
        try:
            full = await self._redis.exists(NODES_FULL_KEY)
        except Exception:  # cannot tell: step
            full = True
        if full or not self.queue_empty:
            self.wake.set()

    def forget(self, job_id: str) -> None:
        self.progress.pop(job_id, None)
        self.submitted.pop(job_id, None)
        # Its ending writes when its node finished: the next step (often the next job's claim)
        # has one UPDATE less to make.
        if job_id in self.node_finished:
            self.node_finished.remove(job_id)

    async def send_event(self, user_id: int, payload: dict) -> None:
        if self.events is not None:
            self.events.send(user_id, payload)
        else:  # not serving (tests drive a job directly), or another channel layer
            await send_job_event_async(user_id, payload)

    async def _write_running_state(self) -> None:
        """Every PROGRESS_DB_INTERVAL: the latest progress of all our jobs in one UPDATE (and
        when their nodes accepted them)."""
        while True:
            await asyncio.sleep(PROGRESS_DB_INTERVAL)
            batch, self.progress = self.progress, {}
            submitted, self.submitted = self.submitted, {}
            if not batch and not submitted:
                continue
            try:
                await self.db(steps.write_running_state, batch, submitted)
            except Exception as exc:  # progress is informative; the next batch will do
                self.submitted = {**submitted, **self.submitted}  # these are kept for the next try
                logger.warning("runner %s: cannot write progress: %s", self.id, exc)
