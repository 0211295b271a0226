"""Signals jobs sends so that parts above it (webhooks, usage) react without jobs importing them."""

from django.dispatch import Signal

# Sent by jobs.lifecycle after jobs changed status (the UPDATE done, maybe not yet committed:
# receivers that start work elsewhere do it in transaction.on_commit), with `job_ids` (a
# list), `status` (the new one) and `held` (the caller's copy of the job when there is one
# job and the caller has it, else None). On the runner's hot path: receivers must be cheap.
# Dispatch's claim also sends `claimed`: its copies of the jobs named (every field loaded), so
# that receivers need not read them.
job_status_changed = Signal()

# Sent by jobs.services inside the submit's transaction, after the user's row lock and the new
# job's INSERT, with `job` and `workflow`. A receiver may refuse the job by raising a
# DomainError (billing: 402 when the balance does not cover the price): the job is not made.
job_created = Signal()
