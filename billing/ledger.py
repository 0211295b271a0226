"""Credits: prices, holds at submit, settling at the end, the balance as the sum of a ledger.

When billing is on (BillingSettings), a submit holds the job's most (`WorkflowPrice`) from the
user's balance inside the submit's transaction, after the user's row lock (jobs.queries.
lock_user), so concurrent submits are counted one after another and the balance never goes
below zero; a submit it would take below zero is refused with 402, naming the balance and the
price. When the job ends: DONE or CANCELLED after it started → SETTLE (its cost: price per job
+ GPU seconds × price, at most the hold; the rest comes back); ERROR, or CANCELLED before it
started → RELEASE (the hold comes back whole). All amounts are Decimals with 4 places.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Sum

from billing.models import BillingSettings, LedgerEntry, WorkflowPrice
from core.errors import InvalidInput, PaymentRequired
from jobs.models import Job

CENT = Decimal("0.0001")
K = LedgerEntry.Kind


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def enabled() -> bool:
    return bool(BillingSettings.current()["enabled"])


def currency() -> str:
    return BillingSettings.current()["currency"]


def balance(user_id: int) -> Decimal:
    total = LedgerEntry.objects.filter(user_id=user_id).aggregate(total=Sum("amount"))["total"]
    return money(total or 0)


def held(user_id: int) -> Decimal:
    """What the user's unfinished jobs hold (already taken out of the balance)."""
    holds = LedgerEntry.objects.filter(user_id=user_id, kind=K.HOLD)
    ended = LedgerEntry.objects.filter(user_id=user_id, kind__in=[K.SETTLE, K.RELEASE]).values("job_id")
    total = holds.exclude(job_id__in=ended).aggregate(total=Sum("amount"))["total"]
    return money(-(total or 0))


def price_of(slug: str) -> WorkflowPrice | None:
    return WorkflowPrice.objects.filter(workflow_slug=slug).first()


def hold_amount(price: WorkflowPrice) -> Decimal:
    return money(price.per_job + price.per_gpu_second * price.max_gpu_seconds)


def cost(price_per_job: Decimal, per_gpu_second: Decimal, gpu_seconds: float | None, most: Decimal) -> Decimal:
    used = Decimal(str(gpu_seconds or 0))
    return min(money(price_per_job + per_gpu_second * used), most)


def hold_for(job: Job, slug: str) -> None:
    """Inside the submit's transaction, after the user's row lock: hold the job's most, or 402."""
    if not enabled():
        return
    price = price_of(slug)
    if price is None:
        return
    amount = hold_amount(price)
    if amount <= 0:
        return
    current = balance(job.user_id)
    if current < amount:
        raise PaymentRequired(
            f"balance: {current} {currency()} is less than this job's price, up to {amount} {currency()}; "
            "top up your balance.",
            errors={"balance": "too low"},
            extra={"balance": str(current), "price": str(amount), "currency": currency()},
        )
    LedgerEntry.objects.create(
        user_id=job.user_id, kind=K.HOLD, amount=-amount, job=job, reason=f"{slug}: held at submit"
    )


def settle(job_id) -> LedgerEntry | None:
    """A job has ended: settle or release its hold (once; a second call does nothing)."""
    hold = LedgerEntry.objects.filter(job_id=job_id, kind=K.HOLD).first()
    if hold is None:
        return None
    job = Job.objects.select_related("workflow").filter(pk=job_id).first()
    if job is None or job.status not in Job.FINISHED:
        return None
    held_amount = -hold.amount
    charged_run = job.status == Job.Status.DONE or (job.status == Job.Status.CANCELLED and job.started_at)
    if charged_run:
        price = price_of(job.workflow.slug)
        per_job = price.per_job if price else Decimal(0)
        per_second = price.per_gpu_second if price else Decimal(0)
        charge = cost(per_job, per_second, job.gpu_seconds, held_amount)
        kind, amount = K.SETTLE, held_amount - charge
        reason = f"{job.workflow.slug}: cost {charge} ({job.gpu_seconds or 0:g} GPU s)"
    else:
        kind, amount = K.RELEASE, held_amount
        reason = f"{job.workflow.slug}: {job.status.lower()}, hold released"
    try:
        with transaction.atomic():
            return LedgerEntry.objects.create(
                user_id=hold.user_id, kind=kind, amount=money(amount), job_id=job_id, reason=reason
            )
    except IntegrityError:  # already settled (another process)
        return None


def top_up(*, user, amount, reason: str = "", actor=None) -> LedgerEntry:
    amount = money(amount)
    if amount <= 0:
        raise InvalidInput("amount: a top-up must be more than 0.", errors={"amount": "must be more than 0"})
    return LedgerEntry.objects.create(user=user, kind=K.TOPUP, amount=amount, reason=reason, created_by=actor)


def adjust(*, user, amount, reason: str, actor=None) -> LedgerEntry:
    """An admin's correction, with a reason; never below zero (under the user's row lock)."""
    amount = money(amount)
    if not reason.strip():
        raise InvalidInput("reason: an adjustment needs a reason.", errors={"reason": "required"})
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if balance(user.pk) + amount < 0:
            raise InvalidInput(
                f"amount: the balance is {balance(user.pk)}; an adjustment may not take it below 0.",
                errors={"amount": "would make the balance negative"},
            )
        return LedgerEntry.objects.create(user=user, kind=K.ADJUST, amount=amount, reason=reason, created_by=actor)


def summary(user, *, entries: int = 50) -> dict:
    return {
        "enabled": enabled(),
        "currency": currency(),
        "balance": str(balance(user.pk)),
        "held": str(held(user.pk)),
        "entries": [
            {
                "id": e.pk,
                "kind": e.kind,
                "amount": str(e.amount),
                "job_id": str(e.job_id) if e.job_id else None,
                "reason": e.reason,
                "created_at": e.created_at,
            }
            for e in LedgerEntry.objects.filter(user=user)[:entries]
        ],
    }


def settle_ended_jobs(limit: int = 1000) -> int:
    """Hourly (and whatever billing's switch says): settle holds of jobs that ended unsettled —
    while billing was off, or when the process that ended them died before settling."""
    ended = LedgerEntry.objects.filter(kind__in=[K.SETTLE, K.RELEASE]).values("job_id")
    open_holds = LedgerEntry.objects.filter(kind=K.HOLD, job__status__in=Job.FINISHED).exclude(job_id__in=ended)
    jobs = list(open_holds.values_list("job_id", flat=True)[:limit])
    return sum(1 for job_id in jobs if settle(job_id) is not None)
