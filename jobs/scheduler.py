"""Dispatch: hand queued jobs to free node slots, fairly, safely with many dispatchers at once.

`dispatch()` is one step: lock the eligible nodes (skip those another dispatcher holds),
count their free slots (our running jobs plus prompts others put on the node), then fill
the slots: the user with the smallest share of running jobs (weighted by user priority)
goes next, ties going to whoever was served longest ago; within a user, job priority, then
age. Each job is claimed with a conditional update, so a job is never assigned twice. A
step costs a fixed handful of queries, however many users wait or jobs it claims: lock the
nodes, count their slots, read the waiting queue, number the events, claim (the UPDATE
answers with the claimed jobs); more only for model affinity and for jobs with input files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import affinity, lifecycle, queries
from jobs.models import Job, quota_day_start
from jobs.queries import QueuedJob
from nodes.health import CLIENT_ID_PREFIX
from nodes.inventory import inventory_keys
from nodes.models import ComfyNode
from workflows.services import workflow_versions
from workflows.spec import file_fields

# Queued jobs read per user beyond the free slots (see dispatch).
LOOKAHEAD = 16


@dataclass
class NodeSlots:
    node: ComfyNode  # as the runner reads it (kept per process, see known_nodes)
    priority: int
    max_queue: int
    free: int
    load: int
    class_types: frozenset = field(default_factory=frozenset)
    models: frozenset = field(default_factory=frozenset)  # its model files ("folder/name")
    held: frozenset = field(default_factory=frozenset)  # those of the last prompt sent there

    def can_run(self, needed: frozenset, files: frozenset = frozenset()) -> bool:
        return self.free > 0 and needed <= self.class_types and files <= self.models


# Nodes as the runner reads them (address, auth header, name) with their class lists and model
# files (hundreds of names), kept per process and read again only when a node's row was saved:
# its updated_at, read under the step's lock, says so.
# {node id: (updated_at, node, class types, model files)}
_nodes: dict[int, tuple[object, ComfyNode, frozenset, frozenset]] = {}


def known_nodes(versions: dict[int, object]) -> dict[int, tuple[ComfyNode, frozenset, frozenset]]:
    """{node id: updated_at} → {node id: (node, its class types, its model files)}."""
    stale = [pk for pk, updated_at in versions.items() if _nodes.get(pk, (None,))[0] != updated_at]
    if stale:
        for node in ComfyNode.objects.filter(pk__in=stale).defer("system_stats", "model_inputs"):
            _nodes[node.pk] = (
                versions[node.pk],
                node,
                frozenset(node.class_types or []),
                inventory_keys(node.inventory),
            )
    return {pk: _nodes[pk][1:] for pk in versions if pk in _nodes}


def forget_kept_nodes() -> None:
    """Read every node afresh (tests: a rolled-back database can hand a node's id to another)."""
    _nodes.clear()


def eligible_nodes() -> tuple[list[NodeSlots], int]:
    """Lock active ONLINE nodes (inside a transaction); return those with free slots, and how
    many nodes were locked (those another dispatcher holds are skipped, not counted)."""
    slots, seen, _busy = _locked_nodes()
    return slots, seen


def _locked_nodes() -> tuple[list[NodeSlots], int, list[NodeSlots]]:
    """eligible_nodes, plus the locked nodes without a free slot (what they hold counts for affinity)."""
    nodes = queries.lock_eligible_nodes()
    if not nodes:
        return [], 0, []
    # Counted after the lock, in a statement of its own: it sees every claim committed by
    # whoever held these nodes before us. A slot is taken until the node has finished the
    # prompt, not until we stored its outputs.
    running = queries.busy_slots([node.pk for node in nodes])
    load = {node.pk: running.get(node.pk, 0) + node.foreign_queue for node in nodes}
    known = known_nodes({node.pk: node.updated_at for node in nodes})
    slots = [
        NodeSlots(
            node=known[node.pk][0],
            priority=node.priority,
            max_queue=node.max_queue,
            free=node.max_queue - load[node.pk],
            load=load[node.pk],
            class_types=known[node.pk][1],
            models=known[node.pk][2],
            held=frozenset(line for line in (node.held_models or "").splitlines() if line),
        )
        for node in nodes
        if node.pk in known
    ]
    return [s for s in slots if s.free > 0], len(nodes), [s for s in slots if s.free <= 0]


def pick_node(slots: list[NodeSlots], needed: frozenset, files: frozenset = frozenset()) -> NodeSlots | None:
    """Higher node priority first, then the least loaded (relative to its size)."""
    fitting = [s for s in slots if s.can_run(needed, files)]
    if not fitting:
        return None
    return min(fitting, key=lambda s: (-s.priority, s.load / s.max_queue, s.node.pk))


@dataclass
class Dispatched:
    jobs: list[Job]  # claimed, now RUNNING
    free_slots: int  # node slots still free afterwards (no runnable job was queued for them)
    # Nodes this step could lock. 0 also when another dispatcher held them all: then
    # free_slots == 0 says nothing about whether the pool is full.
    nodes_seen: int = 0
    # Another dispatcher held every node: it may have counted slots before ours were freed,
    # so try again shortly rather than wait for the next wake-up.
    contended: bool = False
    # No runnable job is left queued (all were claimed, or none was waiting): a slot that frees
    # before the next submit has nothing to take.
    queue_empty: bool = False


def dispatch(*, runner_id: str, node_finished: list[str] = ()) -> Dispatched:
    """One dispatch step. `node_finished`: jobs whose node has just finished their prompt,
    recorded first and committed at once, so that their slots count as free from now, for
    this step and every other dispatcher."""
    mark_node_finished(node_finished)
    assignments: dict = {}  # job id → (node id, prompt id, client id), claimed in one UPDATE
    owners: dict = {}  # job id → user id
    with transaction.atomic():
        slots, seen, busy_nodes = _locked_nodes()
        total_free = sum(s.free for s in slots)
        if seen == 0:
            return Dispatched([], 0, 0, contended=queries.any_eligible_node())
        if total_free == 0:
            return Dispatched([], 0, seen)
        now = timezone.now()
        max_wait_start = now - timedelta(seconds=settings.MODEL_AFFINITY_MAX_WAIT)
        # Look past each user's first jobs: a later one may fit a free node that an earlier one
        # cannot use (its files are elsewhere), so no job that can run waits behind one that cannot.
        queue = queries.waiting_queue(
            total_free + LOOKAHEAD, quota_day_start(), now - timedelta(days=1), max_wait_start
        )
        users = queue.users
        if not users:
            return Dispatched([], total_free, seen, queue_empty=True)
        running, started_today, last_served = {}, {}, {}
        for user_id, load in queue.loads.items():
            running[user_id], started_today[user_id] = load.running, load.started_today
            if load.last_served is not None:
                last_served[user_id] = load.last_served
        # Daily quotas hold at dispatch too (an admin may have lowered one after submit).
        wanted = [u for u in users if started_today.get(u, 0) < users[u].effective_daily_job_limit]
        heads = {u: queue.heads[u] for u in wanted}
        # Every runnable job was read if no user had more than we asked for.
        read_all = all(len(jobs) < total_free + LOOKAHEAD for jobs in heads.values())
        read = sum(len(jobs) for jobs in heads.values())
        versions = workflow_versions({job.workflow_id for jobs in heads.values() for job in jobs})
        needs = {pk: frozenset(workflow.class_types or []) for pk, workflow in versions.items()}
        # Round-robin: among users with the same share, whoever was served longest ago goes first.
        never = now - timedelta(days=2)
        held: dict[int, frozenset] = {}  # node id → the files of the last job it was given
        held_before = {slot.node.pk: slot.held for slot in slots}
        # Model affinity (jobs.affinity) only when some waiting job names model files.
        by_model = settings.MODEL_AFFINITY and any(job.model_files for jobs in heads.values() for job in jobs)
        if by_model and any(job.overdue for jobs in heads.values() for job in jobs):
            heads = _starving_only(heads, wanted, max_wait_start)
        while total_free > 0 and heads:
            fair = lambda u: (  # noqa: E731
                running.get(u, 0) / max(1, users[u].priority),
                last_served.get(u, never),
                -heads[u][0].priority,
                heads[u][0].created_at,
            )
            if by_model:
                for user_id in [u for u in heads if running.get(u, 0) >= users[u].effective_max_concurrent_jobs]:
                    del heads[user_id]
                ranked = sorted(heads, key=fair)
                found = affinity.choose(
                    slots,
                    busy_nodes,
                    [(u, heads[u]) for u in ranked],
                    lambda job: needs.get(job.workflow_id, frozenset()),
                    _usual_node,
                )
                if found is None:
                    break
            else:  # the fairest user goes next, with their first job a free node can run
                user_id = min(heads, key=fair)
                if running.get(user_id, 0) >= users[user_id].effective_max_concurrent_jobs:
                    del heads[user_id]
                    continue
                job, slot = _first_runnable(heads[user_id], slots, needs)
                if job is None:
                    del heads[user_id]
                    continue
                found = (user_id, job, slot)
            user_id, job, slot = found
            user = users[user_id]
            heads[user_id].remove(job)
            slot.held = job.model_files
            held[slot.node.pk] = job.model_files
            if not heads[user_id]:
                del heads[user_id]
            assignments[job.pk] = (slot.node.pk, str(uuid.uuid4()), f"{CLIENT_ID_PREFIX}{uuid.uuid4().hex}")
            owners[job.pk] = user_id
            slot.free -= 1
            slot.load += 1
            total_free -= 1
            running[user_id] = running.get(user_id, 0) + 1
            last_served[user_id] = now
            started_today[user_id] = started_today.get(user_id, 0) + 1
            if started_today[user_id] >= user.effective_daily_job_limit:
                heads.pop(user_id, None)
        jobs = lifecycle.claim(assignments, owners=owners, runner_id=runner_id, now=now)
        changed = {pk: files for pk, files in held.items() if files != held_before.get(pk)}
        if changed:  # (jobs without model files on nodes holding none write nothing)
            queries.set_held_models(changed)
    nodes = {slot.node.pk: slot.node for slot in slots}
    for job in jobs:  # what the runner reads of them, without reading them again
        job.node, job.workflow = nodes[job.node_id], versions[job.workflow_id]
    attach_input_records(jobs)
    unclaimed = len(assignments) - len(jobs)  # cancelled (or taken) since we read the queue
    return Dispatched(jobs, total_free + unclaimed, seen, queue_empty=read_all and len(assignments) == read)


def _starving_only(heads: dict[int, list[QueuedJob]], users: list, since) -> dict[int, list[QueuedJob]]:
    """Only jobs whose model files are not being served stay overdue.

    A job that waited past MODEL_AFFINITY_MAX_WAIT may take a node that must load its files,
    so that no model starves. In a deep backlog every job waits that long, and letting each
    one load would undo affinity; a model starves only when none of its jobs was sent to a
    node in that time (its holders are stuck on long jobs, or none holds it)."""
    served = {
        frozenset(files or [])
        for files in Job.objects.filter(user__in=users, started_at__gte=since)
        .exclude(model_files=[])
        .values_list("model_files", flat=True)
        .distinct()
    }
    return {
        user: [job._replace(overdue=False) if job.overdue and job.model_files in served else job for job in jobs]
        for user, jobs in heads.items()
    }


def attach_input_records(jobs: list[Job]) -> None:
    """Give each job `input_records`, {field id: its input file's JobFile}, read for all of
    them in one query: its follower then needs no database step of its own before sending."""
    wanted = {
        job.pk: {f: str(job.inputs[f]) for f in file_fields(job.workflow.spec) if job.inputs.get(f)} for job in jobs
    }
    ids = [file_id for fields in wanted.values() for file_id in fields.values()]
    by_id = queries.files_by_id(ids)
    for job in jobs:
        job.input_records = {f: by_id[i] for f, i in wanted[job.pk].items() if i in by_id}


def _first_runnable(
    jobs: list[QueuedJob], slots: list[NodeSlots], needs: dict[int, frozenset]
) -> tuple[QueuedJob | None, NodeSlots | None]:
    for job in jobs:
        slot = pick_node(slots, needs.get(job.workflow_id, frozenset()), job.model_files)
        if slot is not None:
            return job, slot
    return None, None


def _usual_node(slots: list[NodeSlots]) -> NodeSlots | None:
    return min(slots, key=lambda s: (-s.priority, s.load / s.max_queue, s.node.pk)) if slots else None


def mark_node_finished(job_ids: list[str]) -> None:
    """The nodes finished these jobs' prompts: their slots are free (their outputs may still be
    on their way)."""
    if job_ids:
        queries.mark_node_finished(job_ids, timezone.now())
