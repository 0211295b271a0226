"""django-q2 tasks of billing (scheduled by billing.schedules)."""

from __future__ import annotations

from billing import ledger


def settle_ended_jobs() -> int:
    return ledger.settle_ended_jobs()
