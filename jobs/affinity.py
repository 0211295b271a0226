"""Model affinity: which queued job a free node slot takes, so that GPUs generate rather than load.

Loading a model file takes a GPU seconds to tens of seconds; ComfyUI keeps the files of the last
prompt it ran (see ``../shared/comfy/README.md``, "Model files"). Each node remembers the files of
the last prompt sent to it (``held``). For every free slot the candidates are the queued jobs it
can run (its classes and model files), each with a cost:

- 0 when the job needs no load there (the node holds its files, or it names none);
- otherwise ``SWITCH_COST - (pressure(files) - pressure(held without this node))``, where a
  model's pressure is its queued jobs per node holding it (infinite when no node holds it);
  ``IDLE_LOAD_COST - pressure(files)`` for a node whose own model has no queued job. A node leaves its model for
  another only when that one is much more in demand, so each model gets nodes in proportion to
  its queue, and a model no node holds is loaded at once.

The cheapest candidate of all free slots goes first; among equal costs the fairest user (the
caller's ranking) wins, then the user's own order (priority, then age). A job that would need a
load and is not worth one (cost > 0) is not started, unless the slot has nothing it could run
without a load and the job is ``overdue`` (its model starves: the scheduler marks a job that
waited past ``MODEL_AFFINITY_MAX_WAIT`` while no job of its files was sent to a node): then it
takes the slot. Pure: no Django, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Queued jobs per node holding a model that make loading it on one more node worth it. A node
# with nothing queued for its own model would idle: a load pays once the other model's queue per
# holding node is longer than a load takes (a few seconds of load against jobs of about a second).
# A node leaving a model that still has a queue needs twice that (no back-and-forth switching).
IDLE_LOAD_COST = 4.0
SWITCH_COST = 2 * IDLE_LOAD_COST


def _pressure(files: frozenset, backlog: Mapping[frozenset, int], holders: Mapping[frozenset, int]) -> float:
    count = holders.get(files, 0)
    return math.inf if count == 0 else backlog.get(files, 0) / count


def choose(
    slots: Sequence[Any],
    busy: Sequence[Any],
    ranked: Sequence[tuple[Any, Sequence[Any]]],
    needs: Callable[[Any], frozenset],
    pick: Callable[[list], Any],
) -> tuple[Any, Any, Any] | None:
    """The next (user, job, slot), or None when no free slot should take a job now.

    ``slots``: nodes with free slots (``free``, ``held``, ``models``, ``class_types``); ``busy``:
    the other online nodes (what they hold counts); ``ranked``: [(user, their queued jobs)] in
    fair order; ``needs(job)``: the node classes the job's workflow needs; ``pick(slots)``: the
    usual choice among equally good slots (priority, then the least loaded)."""
    nodes = [*slots, *busy]
    backlog: dict[frozenset, int] = {}
    # Jobs that need the same classes and files fare the same on a slot: only the first of them
    # (fairest user, then their order) and the first overdue one can win. {kind: (rank, order, user, job)}
    first: dict[tuple, tuple] = {}
    first_overdue: dict[tuple, tuple] = {}
    for rank, (user, jobs) in enumerate(ranked):
        for order, job in enumerate(jobs):
            if job.model_files:
                backlog[job.model_files] = backlog.get(job.model_files, 0) + 1
            kind = (needs(job), job.model_files)
            first.setdefault(kind, (rank, order, user, job))
            if job.overdue:
                first_overdue.setdefault(kind, (rank, order, user, job))
    holders: dict[frozenset, int] = {}
    for node in nodes:
        for files in backlog:
            if files <= node.held:
                holders[files] = holders.get(files, 0) + 1
    best = None  # ((cost, rank, order, own, holds something), user, job, slot)
    for slot in slots:
        if slot.free <= 0:
            continue
        # The pressure its own model would have without it (leaving a model's only node strands
        # that model's queue: infinite).
        own = 0.0
        if slot.held and backlog.get(slot.held):
            others = holders.get(slot.held, 1) - 1
            own = math.inf if others == 0 else backlog[slot.held] / others
        has_warm = False
        fallback = None
        for (classes, files), (rank, order, user, job) in first.items():
            if not (classes <= slot.class_types and files <= slot.models):
                continue
            if not files or files <= slot.held:
                cost = 0.0
                has_warm = True
            else:
                wanted = _pressure(files, backlog, holders)
                gain = 0.0 if wanted == own == math.inf else wanted - own
                cost = (SWITCH_COST if own else IDLE_LOAD_COST) - gain
            # Equal otherwise, load where the least-wanted model is dropped (a node holding
            # nothing first).
            key = (cost, rank, order, own, bool(slot.held))
            if cost <= 0:
                if best is None or key < best[0]:
                    best = (key, user, job, slot)
            elif (classes, files) in first_overdue:
                rank, order, user, job = first_overdue[(classes, files)]
                key = (cost, rank, order, own, bool(slot.held))
                if fallback is None or key < fallback[0]:
                    fallback = (key, user, job, slot)
        if fallback is not None and not has_warm:
            # Nothing it could run without a load: a job past its max wait takes it.
            key = (math.inf, *fallback[0][1:])
            if best is None or key < best[0]:
                best = (key, *fallback[1:])
    if best is None:
        return None
    _key, user, job, slot = best
    if not job.model_files or job.model_files <= slot.held:
        # Among slots where the job runs without a load, the usual order decides.
        same = [
            s
            for s in slots
            if s.free > 0
            and needs(job) <= s.class_types
            and job.model_files <= s.models
            and (job.model_files <= s.held if job.model_files else not s.held or s is slot)
        ]
        slot = pick(same) or slot
    return user, job, slot
