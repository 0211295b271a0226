"""Dispatch: hand queued jobs to free node slots, fairly, safely with many dispatchers at once.

`dispatch()` is one step: lock the eligible nodes (skip those another dispatcher holds),
count their free slots (our running jobs plus prompts others put on the node), then fill
the slots: the user with the smallest share of running jobs (weighted by user priority)
goes next, ties going to whoever was served longest ago; within a user, job priority, then
age. Each job is claimed with a conditional update, so a job is never assigned twice. A
step costs a fixed handful of queries, however many users wait.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from jobs import lifecycle
from jobs.models import Job, quota_day_start
from nodes.health import CLIENT_ID_PREFIX
from nodes.models import ComfyNode
from workflows.services import workflow_versions

S = Job.Status


@dataclass
class NodeSlots:
    node: ComfyNode  # as the runner reads it (kept per process, see known_nodes)
    priority: int
    max_queue: int
    free: int
    load: int
    class_types: frozenset = field(default_factory=frozenset)

    def can_run(self, needed: frozenset) -> bool:
        return self.free > 0 and needed <= self.class_types


# Nodes as the runner reads them (address, auth header, name) with their class lists
# (hundreds of names), kept per process and read again only when a node's row was saved:
# its updated_at, read under the step's lock, says so. {node id: (updated_at, node, class types)}
_nodes: dict[int, tuple[object, ComfyNode, frozenset]] = {}


def known_nodes(versions: dict[int, object]) -> dict[int, tuple[ComfyNode, frozenset]]:
    """{node id: updated_at} → {node id: (node, its class types)}."""
    stale = [pk for pk, updated_at in versions.items() if _nodes.get(pk, (None,))[0] != updated_at]
    if stale:
        for node in ComfyNode.objects.filter(pk__in=stale).defer("system_stats"):
            _nodes[node.pk] = (versions[node.pk], node, frozenset(node.class_types or []))
    return {pk: _nodes[pk][1:] for pk in versions if pk in _nodes}


def forget_kept_nodes() -> None:
    """Read every node afresh (tests: a rolled-back database can hand a node's id to another)."""
    _nodes.clear()


# The nodes dispatch may use, once for both the step's lock and the "is any node usable?" check.
_ELIGIBLE = f"""FROM {ComfyNode._meta.db_table} WHERE is_active = %s AND status = %s AND remove_when_drained = %s"""
_ELIGIBLE_PARAMS = (True, ComfyNode.Status.ONLINE, False)


def _any_eligible() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 {_ELIGIBLE} LIMIT 1", _ELIGIBLE_PARAMS)
        return cursor.fetchone() is not None


def eligible_nodes() -> tuple[list[NodeSlots], int]:
    """Lock active ONLINE nodes (inside a transaction); return those with free slots, and how
    many nodes were locked (those another dispatcher holds are skipped, not counted).

    Plain SQL, as tuples: every dispatch step asks, and compiling the two ORM queries and
    building a model per node cost more than the database spent answering them."""
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, priority, max_queue, foreign_queue, updated_at {_ELIGIBLE} ORDER BY priority DESC, id{lock}",
            _ELIGIBLE_PARAMS,
        )
        nodes = cursor.fetchall()
        if not nodes:
            return [], 0
        # Counted after the lock, in a statement of its own: it sees every claim committed by
        # whoever held these nodes before us. A slot is taken until the node has finished the
        # prompt, not until we stored its outputs.
        cursor.execute(
            f"""SELECT node_id, COUNT(*) FROM {Job._meta.db_table}
                WHERE status = %s AND node_finished_at IS NULL AND node_id IN ({", ".join(["%s"] * len(nodes))})
                GROUP BY node_id""",
            [S.RUNNING, *(node[0] for node in nodes)],
        )
        running = dict(cursor.fetchall())
    load = {pk: running.get(pk, 0) + foreign for pk, _, _, foreign, _ in nodes}
    free_nodes = [node for node in nodes if node[2] > load[node[0]]]
    known = known_nodes({pk: updated_at for pk, _, _, _, updated_at in free_nodes})
    return [
        NodeSlots(
            node=known[pk][0],
            priority=priority,
            max_queue=max_queue,
            free=max_queue - load[pk],
            load=load[pk],
            class_types=known[pk][1],
        )
        for pk, priority, max_queue, _, _ in free_nodes
        if pk in known
    ], len(nodes)


def pick_node(slots: list[NodeSlots], needed: frozenset) -> NodeSlots | None:
    """Higher node priority first, then the least loaded (relative to its size)."""
    fitting = [s for s in slots if s.can_run(needed)]
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


def dispatch_once(*, runner_id: str) -> list[Job]:
    """Assign as many queued jobs as there are free slots. Returns the claimed jobs (RUNNING)."""
    return dispatch(runner_id=runner_id).jobs


def dispatch(*, runner_id: str, node_finished: list[str] = ()) -> Dispatched:
    """One dispatch step. `node_finished`: jobs whose node has just finished their prompt
    (their slots count as free from now), recorded in the same transaction."""
    if node_finished:
        from jobs.steps import mark_node_finished

        mark_node_finished(node_finished)
    User = get_user_model()
    assignments: dict = {}  # job id → (node id, prompt id, client id), claimed in one UPDATE
    with transaction.atomic():
        slots, seen = eligible_nodes()
        total_free = sum(s.free for s in slots)
        if seen == 0:
            return Dispatched([], 0, 0, contended=_any_eligible())
        if total_free == 0:
            return Dispatched([], 0, seen)
        users = {
            u.pk: u
            for u in User.objects.raw(  # with only the fields dispatch reads
                f"""SELECT id, priority, max_concurrent_jobs, daily_job_limit FROM {User._meta.db_table}
                WHERE is_blocked = %s AND id IN (SELECT user_id FROM {Job._meta.db_table} WHERE status = %s)""",
                [False, S.QUEUED],
            )
        }
        if not users:
            return Dispatched([], total_free, seen)
        now = timezone.now()
        # Daily quotas hold at dispatch too (an admin may have lowered one after submit).
        day_start = quota_day_start()
        served_since = now - timedelta(days=1)
        stats = (
            Job.objects.filter(Q(status=S.RUNNING) | Q(started_at__gte=min(day_start, served_since)), user__in=users)
            .values("user")
            .annotate(
                running=Count("id", filter=Q(status=S.RUNNING)),
                today=Count("id", filter=Q(started_at__gte=day_start)),
                last=Max("started_at", filter=Q(started_at__gte=served_since)),
            )
        )
        running, started_today, last_served = {}, {}, {}
        for row in stats:
            running[row["user"]], started_today[row["user"]] = row["running"], row["today"]
            if row["last"] is not None:
                last_served[row["user"]] = row["last"]
        wanted = [u for u in users if started_today.get(u, 0) < users[u].effective_daily_job_limit]
        heads = queue_heads(wanted, total_free)
        versions = workflow_versions({job.workflow_id for jobs in heads.values() for job in jobs})
        needs = {pk: frozenset(workflow.class_types or []) for pk, workflow in versions.items()}
        # Round-robin: among users with the same share, whoever was served longest ago goes first.
        never = now - timedelta(days=2)
        while total_free > 0 and heads:
            user_id = min(
                heads,
                key=lambda u: (
                    running.get(u, 0) / max(1, users[u].priority),
                    last_served.get(u, never),
                    -heads[u][0].priority,
                    heads[u][0].created_at,
                ),
            )
            user = users[user_id]
            if running.get(user_id, 0) >= user.effective_max_concurrent_jobs:
                del heads[user_id]
                continue
            job, slot = _first_runnable(heads[user_id], slots, needs)
            if job is None:
                del heads[user_id]
                continue
            heads[user_id].remove(job)
            if not heads[user_id]:
                del heads[user_id]
            assignments[job.pk] = (slot.node.pk, str(uuid.uuid4()), f"{CLIENT_ID_PREFIX}{uuid.uuid4().hex}")
            slot.free -= 1
            slot.load += 1
            total_free -= 1
            running[user_id] = running.get(user_id, 0) + 1
            last_served[user_id] = now
            started_today[user_id] = started_today.get(user_id, 0) + 1
            if started_today[user_id] >= user.effective_daily_job_limit:
                heads.pop(user_id, None)
        lifecycle.claim(assignments, runner_id=runner_id, now=now)
    jobs = list(
        Job.objects.filter(
            pk__in=list(assignments),
            status=S.RUNNING,
            prompt_id__in=[prompt_id for _, prompt_id, _ in assignments.values()],
        )
    )
    nodes = {slot.node.pk: slot.node for slot in slots}
    for job in jobs:  # what the runner reads of them, without reading them again
        job.node, job.workflow = nodes[job.node_id], versions[job.workflow_id]
    unclaimed = len(assignments) - len(jobs)  # cancelled (or taken) since we read the queue
    return Dispatched(jobs, total_free + unclaimed, seen)


class QueuedJob(NamedTuple):
    """What dispatch reads of a queued job."""

    pk: uuid.UUID
    user_id: int
    workflow_id: int
    priority: int
    created_at: object  # only compared with the others from the same query


def queue_heads(user_ids: list[int], per_user: int) -> dict[int, list[QueuedJob]]:
    """Each user's first `per_user` queued jobs by priority then age, in one query.

    Written as SQL, read as tuples: the ORM spends longer compiling this window query and
    building its models than the database spends running it, on every dispatch step. Claims
    are conditional updates, so two dispatchers reading the same job never both get it.
    """
    if not user_ids or per_user < 1:
        return {}
    users = ", ".join(["%s"] * len(user_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT id, user_id, workflow_id, priority, created_at FROM (
                  SELECT id, user_id, workflow_id, priority, created_at,
                         ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY priority DESC, created_at ASC) AS queue_rank
                  FROM {Job._meta.db_table} WHERE status = %s AND user_id IN ({users})
                ) AS ranked WHERE queue_rank <= %s ORDER BY user_id, queue_rank""",
            [S.QUEUED, *user_ids, per_user],
        )
        rows = cursor.fetchall()
    heads: dict[int, list[QueuedJob]] = {}
    for row in rows:
        job = QueuedJob(*row)
        heads.setdefault(job.user_id, []).append(job)
    return heads


def _first_runnable(
    jobs: list[QueuedJob], slots: list[NodeSlots], needs: dict[int, frozenset]
) -> tuple[QueuedJob | None, NodeSlots | None]:
    for job in jobs:
        slot = pick_node(slots, needs.get(job.workflow_id, frozenset()))
        if slot is not None:
            return job, slot
    return None, None


def queue_position(job: Job) -> int | None:
    """Where a queued job stands under fair scheduling (1 = next), an estimate for people.

    Round-robin across users: ahead of it are its owner's earlier jobs, and from every other
    user as many jobs as that (plus one). One query: queued jobs counted per user (as SQL:
    every submit and every page of jobs asks, and the ORM took longer to compile it than
    the database to answer).
    """
    if job.status != S.QUEUED:
        return None
    created_at = Job._meta.get_field("created_at").get_db_prep_value(job.created_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT user_id, COUNT(*), COUNT(*) FILTER (WHERE user_id = %s AND created_at < %s)
                FROM {Job._meta.db_table} WHERE status = %s GROUP BY user_id""",
            [job.user_id, created_at, S.QUEUED],
        )
        rows = cursor.fetchall()
    mine_ahead = sum(ahead for _, _, ahead in rows)
    return 1 + mine_ahead + sum(min(n, mine_ahead + 1) for user_id, n, _ in rows if user_id != job.user_id)
