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
from datetime import timedelta
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from jobs import lifecycle
from jobs.models import Job, quota_day_start
from nodes.health import CLIENT_ID_PREFIX
from nodes.models import ComfyNode
from workflows.models import Workflow

S = Job.Status


@dataclass
class NodeSlots:
    node: ComfyNode
    free: int
    load: int
    class_types: frozenset = field(default_factory=frozenset)

    def can_run(self, needed: frozenset) -> bool:
        return self.free > 0 and needed <= self.class_types


# A node's class list (hundreds of names) changes only when its row is saved: decode it once
# per version, not on every dispatch step. {node id: (updated_at, class types)}
_class_types: dict[int, tuple[object, frozenset]] = {}


def class_types_of(nodes: list[ComfyNode]) -> dict[int, frozenset]:
    stale = [n.pk for n in nodes if _class_types.get(n.pk, (None,))[0] != n.updated_at]
    if stale:
        for pk, updated_at, names in ComfyNode.objects.filter(pk__in=stale).values_list("pk", "updated_at", "class_types"):
            _class_types[pk] = (updated_at, frozenset(names or []))
    return {n.pk: _class_types[n.pk][1] for n in nodes if n.pk in _class_types}


def _eligible():
    return ComfyNode.objects.filter(is_active=True, status=ComfyNode.Status.ONLINE, remove_when_drained=False)


def eligible_nodes() -> tuple[list[NodeSlots], int]:
    """Lock active ONLINE nodes (inside a transaction); return those with free slots, and how
    many nodes were locked (those another dispatcher holds are skipped, not counted)."""
    nodes = list(
        _eligible().select_for_update(skip_locked=True)
        .only("id", "priority", "max_queue", "foreign_queue", "updated_at")  # all that dispatch reads
        .order_by("-priority", "id")
    )
    if not nodes:
        return [], 0
    # A slot is taken until the node has finished the prompt, not until we stored its outputs.
    running = dict(
        Job.objects.filter(status=S.RUNNING, node__in=nodes, node_finished_at__isnull=True)
        .values_list("node").annotate(n=Count("id"))
    )
    load = {node.pk: running.get(node.pk, 0) + node.foreign_queue for node in nodes}
    free_nodes = [node for node in nodes if node.max_queue > load[node.pk]]
    class_types = class_types_of(free_nodes)
    return [NodeSlots(node=node, free=node.max_queue - load[node.pk], load=load[node.pk],
                      class_types=class_types.get(node.pk, frozenset()))
            for node in free_nodes], len(nodes)


def pick_node(slots: list[NodeSlots], needed: frozenset) -> NodeSlots | None:
    """Higher node priority first, then the least loaded (relative to its size)."""
    fitting = [s for s in slots if s.can_run(needed)]
    if not fitting:
        return None
    return min(fitting, key=lambda s: (-s.node.priority, s.load / s.node.max_queue, s.node.pk))


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
        from jobs.outcomes import mark_node_finished

        mark_node_finished(node_finished)
    User = get_user_model()
    assignments: dict = {}  # job id → (node id, prompt id, client id), claimed in one UPDATE
    with transaction.atomic():
        slots, seen = eligible_nodes()
        total_free = sum(s.free for s in slots)
        if seen == 0:
            return Dispatched([], 0, 0, contended=_eligible().exists())
        if total_free == 0:
            return Dispatched([], 0, seen)
        queued_users = Job.objects.filter(status=S.QUEUED).values("user")
        users = {u.pk: u for u in User.objects.filter(pk__in=queued_users, is_blocked=False)}
        if not users:
            return Dispatched([], total_free, seen)
        now = timezone.now()
        # Daily quotas hold at dispatch too (an admin may have lowered one after submit).
        day_start = quota_day_start()
        served_since = now - timedelta(days=1)
        stats = (
            Job.objects.filter(Q(status=S.RUNNING) | Q(started_at__gte=min(day_start, served_since)), user__in=users)
            .values("user")
            .annotate(running=Count("id", filter=Q(status=S.RUNNING)),
                      today=Count("id", filter=Q(started_at__gte=day_start)),
                      last=Max("started_at", filter=Q(started_at__gte=served_since)))
        )
        running, started_today, last_served = {}, {}, {}
        for row in stats:
            running[row["user"]], started_today[row["user"]] = row["running"], row["today"]
            if row["last"] is not None:
                last_served[row["user"]] = row["last"]
        wanted = [u for u in users if started_today.get(u, 0) < users[u].effective_daily_job_limit]
        heads = queue_heads(wanted, total_free)
        needs = workflow_class_types({job.workflow_id for jobs in heads.values() for job in jobs})
        # Round-robin: among users with the same share, whoever was served longest ago goes first.
        never = now - timedelta(days=2)
        while total_free > 0 and heads:
            user_id = min(
                heads,
                key=lambda u: (running.get(u, 0) / max(1, users[u].priority), last_served.get(u, never),
                               -heads[u][0].priority, heads[u][0].created_at),
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
    # What the runner reads; a node's class list and health snapshot are not among it.
    jobs = list(Job.objects.filter(pk__in=list(assignments), status=S.RUNNING,
                                   prompt_id__in=[prompt_id for _, prompt_id, _ in assignments.values()])
                .select_related("workflow", "node").defer("node__class_types", "node__system_stats"))
    unclaimed = len(assignments) - len(jobs)  # cancelled (or taken) since we read the queue
    return Dispatched(jobs, total_free + unclaimed, seen)


def queue_heads(user_ids: list[int], per_user: int) -> dict[int, list[Job]]:
    """Each user's first `per_user` queued jobs by priority then age, in one query.

    Written as SQL: the ORM spends longer compiling this window query than the database
    spends running it, on every dispatch step. The jobs come back with only the fields
    dispatch reads. Claims are conditional updates, so two dispatchers reading the same
    job never both get it.
    """
    if not user_ids or per_user < 1:
        return {}
    users = ", ".join(["%s"] * len(user_ids))
    ranked = Job.objects.raw(
        f"""SELECT id, user_id, workflow_id, priority, created_at FROM (
              SELECT id, user_id, workflow_id, priority, created_at,
                     ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY priority DESC, created_at ASC) AS queue_rank
              FROM {Job._meta.db_table} WHERE status = %s AND user_id IN ({users})
            ) AS ranked WHERE queue_rank <= %s ORDER BY user_id, queue_rank""",
        [S.QUEUED, *user_ids, per_user],
    )
    heads: dict[int, list[Job]] = {}
    for job in ranked:
        heads.setdefault(job.user_id, []).append(job)
    return heads


def workflow_class_types(workflow_ids: set[int]) -> dict[int, frozenset]:
    rows = Workflow.objects.filter(pk__in=workflow_ids).values_list("pk", "class_types")
    return {pk: frozenset(names or []) for pk, names in rows}


def _first_runnable(jobs: list[Job], slots: list[NodeSlots],
                    needs: dict[int, frozenset]) -> tuple[Job | None, NodeSlots | None]:
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
            [job.user_id, created_at, S.QUEUED])
        rows = cursor.fetchall()
    mine_ahead = sum(ahead for _, _, ahead in rows)
    return 1 + mine_ahead + sum(min(n, mine_ahead + 1) for user_id, n, _ in rows if user_id != job.user_id)
