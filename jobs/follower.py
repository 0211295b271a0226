"""Run one job on its node: send it, follow it, collect its outputs, end it.

A `JobFollower` is one job's task in its runner's event loop. A job the runner has just claimed
is sent (inputs uploaded, then the prompt); a job adopted from a runner that died is first
reconciled with its node (finished there → collect; still there → follow; unknown there → send
it if it was never accepted, else requeue). Failures of the node (gone, prompt lost) requeue the
job; failures of the job (rejected, a node raised, interrupted, timed out) end it.

The follower does not know the runner's class: it talks to it through `RunnerLink`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from jobs import files, steps, transfer
from jobs.models import Job
from jobs.notify import TickGate
from nodes.comfy.client import ComfyClient
from nodes.comfy.errors import (
    ComfyError,
    ExecutionFailed,
    Interrupted,
    NodeUnreachable,
    PromptLost,
    PromptPartlyRejected,
    PromptRejected,
    PromptUnknown,
)
from nodes.comfy.follow import Progress, PromptRun
from nodes.inventory import refused_files
from nodes.models import ComfyNode
from nodes.services import forget_model_files
from workflows.prompt import build_prompt

logger = logging.getLogger("comfyportal.jobs")
S = Job.Status


class RunnerLink(Protocol):
    """What a follower needs from the runner that owns it."""

    id: str
    cancelling: set[str]  # jobs whose owner asked to cancel: being stopped then means "cancelled"

    def db(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Run a blocking database step (`jobs.steps`) off the event loop."""

    def client_for(self, node: ComfyNode) -> ComfyClient: ...

    async def send_event(self, user_id: int, payload: dict) -> None: ...

    def record_progress(self, job_id: str, fraction: float, text: str) -> None:
        """Keep a job's latest progress for the runner's next batched write."""

    def record_submitted(self, job_id: str, at: datetime, client_id: str) -> None:
        """Keep when a job's node accepted its prompt, and the client id it was sent under
        (its socket's), for the runner's next batched write."""

    def slot_freed(self, job_id: str, prompt_seconds: float | None = None) -> None:
        """The job's node finished its prompt (which it ran for `prompt_seconds`, if it said):
        its slot may take another job now."""

    def forget(self, job_id: str) -> None:
        """The job is ending: drop whatever of it is still to be written (its ending writes
        when the node accepted and finished it)."""


class JobFollower:
    def __init__(self, runner: RunnerLink, job: Job):
        self.runner = runner
        self.job = job
        self.job_id = str(job.pk)
        self.prompt_run: PromptRun | None = None  # the node's execution times, for usage
        self.node_finished_at: datetime | None = None  # written with the job's end
        self.ticks = TickGate(self._send_tick, settings.PROGRESS_EVENT_INTERVAL)

    async def run(self, *, resume: bool) -> None:
        """Run the job to its end (or back to the queue). `resume`: adopted from a dead runner."""
        try:
            await self._run(resume=resume)
        finally:
            self.ticks.close()

    async def _run(self, *, resume: bool) -> None:
        job, runner = self.job, self.runner
        node = job.node
        if node is None:  # its node was deleted while nobody followed the job
            await runner.db(steps.requeue_or_fail, job.pk, runner_id=runner.id, reason="its node was removed")
            return
        client = runner.client_for(node)
        remaining = settings.JOB_TIMEOUT - (timezone.now() - (job.started_at or timezone.now())).total_seconds()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                entry = await self._execute(client, resume=resume)
                await self._collect(client, entry)
        except PromptRejected as exc:
            gone = refused_files(exc.node_errors, job.model_files or [])
            if gone:  # the node lost files its inventory lists: another node may have them
                reason = f"{node.name} no longer has {', '.join(gone)}"
                await runner.db(forget_model_files, node.pk, gone, reason)
                await runner.db(steps.requeue_or_fail, job.pk, runner_id=runner.id, reason=reason)
            else:
                await self._finish(S.ERROR, exc.message)
        except ExecutionFailed as exc:
            await self._finish(S.ERROR, f"ComfyUI error: {exc.message}")
        except Interrupted as exc:
            if await runner.db(steps.cancel_was_requested, job.pk):
                await self._finish(S.CANCELLED, "Cancelled while running.")
            else:
                await self._finish(S.ERROR, f"Interrupted on node {node.name} by someone else ({exc.message}).")
        except ComfyError as exc:  # transient: the node is gone or lost the prompt
            await self._on_transient(client, node, exc)
        except TimeoutError:
            await cancel_on_node(client, job.prompt_id)
            await self._finish(S.ERROR, f"Timed out: not finished after {settings.JOB_TIMEOUT:g} s.")
        except asyncio.CancelledError:
            if self.job_id in runner.cancelling:
                await self._finish(S.CANCELLED, "Cancelled while running.")
                return
            raise  # the runner is shutting down: the job stays RUNNING and is adopted
        except Exception as exc:
            logger.exception("job %s failed inside comfyportal", self.job_id)
            await self._finish(S.ERROR, f"Internal error while running the job: {type(exc).__name__}: {exc}")

    async def _execute(self, client: ComfyClient, *, resume: bool) -> dict:
        """Send the job (or find it again on its node) and follow it; return its history entry."""
        job = self.job
        if resume:
            try:
                return await self._prompt_run(client, job.workflow.graph).resume()
            except PromptUnknown as exc:
                if job.submitted_at is not None:
                    raise PromptLost(f"node {job.node.name} no longer knows the job's prompt (it restarted?)") from exc
                # Never accepted: its runner died before the node took it. Send it now.
        claimed_with = getattr(job, "input_records", None)
        if claimed_with is not None or not steps.has_file_inputs(job):
            # The claim has just loaded the job and its input files (a later cancel is seen by
            # the heartbeat); their bytes are read only if the node lacks them.
            records = None if job.cancel_requested else {f: (r, None) for f, r in (claimed_with or {}).items()}
        else:  # adopted: read the job and its files now
            records = await self.runner.db(steps.inputs_to_send, job.pk)
        if records is None:
            raise Interrupted("cancelled before it was sent to the node")
        reused: list[str] = []
        uploaded = await transfer.upload_inputs(client, job, records, reused=reused)
        try:
            return await self._prompt_run(client, build_prompt(job.workflow, job.inputs, uploaded)).run()
        except PromptRejected as exc:
            if not transfer.lost_inputs(client, reused, exc.node_errors):
                raise
            if isinstance(exc, PromptPartlyRejected):  # withdrawn: another attempt, under a new prompt id
                raise PromptLost(f"node {job.node.name} had lost the job's input files") from exc
        # The node lost files it had (a restart with a fresh input folder): nothing was queued
        # (400), so send them and the prompt again.
        uploaded = await transfer.upload_inputs(client, job, records)
        return await self._prompt_run(client, build_prompt(job.workflow, job.inputs, uploaded)).run()

    def _prompt_run(self, client: ComfyClient, graph: dict) -> PromptRun:
        self.prompt_run = PromptRun(
            client,
            graph,
            prompt_id=self.job.prompt_id,
            client_id=self.job.client_id,
            on_progress=self._on_progress,
            on_submitted=self._submitted,
            on_finished=self._node_slot_free,
        )
        return self.prompt_run

    async def _submitted(self) -> None:
        # Written with the runner's progress batch, or with the job's end: kept on the job too,
        # for a job that ends while the batch holding it is being written (that UPDATE skips
        # ended jobs).
        self.job.submitted_at = timezone.now()
        # A kept socket has its own client id: an adopter follows the prompt under that one.
        if self.prompt_run is not None:
            self.job.client_id = self.prompt_run.client_id
        self.runner.record_submitted(self.job_id, self.job.submitted_at, self.job.client_id)

    async def _node_slot_free(self) -> None:
        """The node finished the prompt: dispatch may fill its slot while we collect the outputs."""
        self.node_finished_at = timezone.now()
        ran_for = self.prompt_run.execution_seconds if self.prompt_run is not None else None
        self.runner.slot_freed(self.job_id, ran_for)

    async def _on_progress(self, progress: Progress) -> None:
        job = self.job
        payload = {
            "id": self.job_id,
            "status": S.RUNNING,
            "progress": progress.fraction,
            "progress_text": progress.text,
            "node": job.node.name if job.node else None,
            "event": "progress",
        }
        await self.ticks.offer(payload)
        self.runner.record_progress(self.job_id, progress.fraction, progress.text)

    async def _send_tick(self, payload: dict) -> None:
        await self.runner.send_event(self.job.user_id, payload)

    async def _collect(self, client: ComfyClient, entry: dict) -> None:
        results = []
        for image in transfer.wanted_outputs(self.job.workflow.spec, entry):
            data, ref = await transfer.download_output(client, image)
            # Decoding a video or a sound takes a while: in a worker thread, so that neither this
            # event loop (the other jobs it follows) nor the runner's database thread waits.
            results.append((data, ref, await asyncio.to_thread(files.describe_result, data)))
        missing = transfer.missing_outputs(self.job.workflow.spec, entry)
        if missing:  # what was made is kept, as partial results of a failed job
            message = transfer.missing_outputs_error(self.job.workflow.graph, missing)
            await self._finish(S.ERROR, message, results=results)
            return
        await self._finish(S.DONE, "", results=results)

    async def _on_transient(self, client: ComfyClient, node: ComfyNode, exc: ComfyError) -> None:
        job, runner = self.job, self.runner
        if await runner.db(steps.cancel_was_requested, job.pk):
            await self._finish(S.CANCELLED, "Cancelled while running.")
            return
        if isinstance(exc, NodeUnreachable) or not isinstance(exc, PromptLost):
            await runner.db(steps.node_failed, node.pk, exc.message)
        await cancel_on_node(client, job.prompt_id)  # never let a stray copy run on
        await runner.db(steps.requeue_or_fail, job.pk, runner_id=runner.id, reason=exc.message)
        payload = await runner.db(steps.payload_for, job.pk)
        if payload is not None:
            await runner.send_event(payload["user_id"], payload["job"])

    async def _finish(self, status: str, message: str, *, results: list[tuple] = ()) -> None:
        job = self.job
        self.ticks.close()  # the end supersedes a waiting tick
        self.runner.forget(self.job_id)
        payload = await self.runner.db(
            steps.finish_and_present,
            job,
            status=status,
            message=message,
            results=results,
            submitted_at=job.submitted_at,
            node_finished_at=self.node_finished_at,
            gpu_seconds=self.prompt_run.execution_seconds if self.prompt_run is not None else None,
        )
        if payload is not None:
            await self.runner.send_event(payload["user_id"], payload["job"])


async def cancel_on_node(client: ComfyClient, prompt_id: str) -> None:
    """Ask the node to drop or interrupt a prompt; give up quietly after a few seconds."""
    try:
        async with asyncio.timeout(3):
            await client.cancel(prompt_id)
    except (ComfyError, TimeoutError):
        pass
