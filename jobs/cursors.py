"""Per-user event sequence numbers: the cursors /ws/jobs/ resumes from.

Every change of a job that its owner sees (submitted, started, progressed, cancel requested,
finished, requeued) stamps the job row with the next number of its owner's counter
(`EventCounter`), in the same transaction as the change. The counter's row stays locked
until that transaction commits, so one user's changes commit in the order of their numbers:
"every job of mine with seq > N" is then exactly what happened after the change numbered N.

Numbers are per user: a cursor only ever selects jobs of the user who presents it.
"""

from __future__ import annotations

from collections import Counter

from django.db import connection
from django.db.models.expressions import RawSQL
from django.db.models.sql import UpdateQuery

from jobs.models import EventCounter

_TABLE = EventCounter._meta.db_table


def take(user_id: int, count: int = 1) -> int:
    """Reserve `count` numbers of a user's sequence; returns the last (they are last-count+1 …
    last). Call inside the transaction that writes them: the counter stays locked until it ends."""
    return take_many({user_id: count})[user_id]


def update_with_next(queryset, user_id: int, **fields) -> int | None:
    """UPDATE the rows of `queryset` (one job at most) with `fields` and the next number of
    the user's sequence: that number, or None if no row matched (the number is taken all the
    same, as take() then an UPDATE would). Call inside a transaction.

    On PostgreSQL the number is taken in the UPDATE's own statement (a data-modifying WITH),
    one round trip instead of two; the counter's row stays locked until the commit all the same."""
    if connection.vendor != "postgresql":
        seq = take(user_id)
        return seq if queryset.update(seq=seq, **fields) else None
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values({**fields, "seq": RawSQL("(SELECT seq FROM taken)", [])})
    update_sql, params = query.get_compiler(queryset.db).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH taken AS (INSERT INTO {_TABLE} (user_id, seq) VALUES (%s, 1) "
            f"ON CONFLICT (user_id) DO UPDATE SET seq = {_TABLE}.seq + 1 RETURNING seq) "
            f"{update_sql} RETURNING (SELECT seq FROM taken)",
            [user_id, *params],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def take_many(counts: dict[int, int]) -> dict[int, int]:
    """{user id: how many numbers} → {user id: the last number reserved}, in one statement.
    Users are locked in id order, so two callers never wait on each other in a cycle."""
    if not counts:
        return {}
    users = sorted(counts)
    values = ", ".join(["(%s, %s)"] * len(users))
    params = [value for user_id in users for value in (user_id, counts[user_id])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_TABLE} (user_id, seq) VALUES {values} "
            f"ON CONFLICT (user_id) DO UPDATE SET seq = {_TABLE}.seq + excluded.seq "
            "RETURNING user_id, seq",
            params,
        )
        return {int(user_id): int(seq) for user_id, seq in cursor.fetchall()}


def take_for_jobs(owners: dict) -> dict:
    """{job id: user id} → {job id: a fresh number of its owner's sequence}, in one statement."""
    counts = Counter(owners.values())
    last = take_many(dict(counts))
    following = {user_id: last[user_id] - count + 1 for user_id, count in counts.items()}
    seqs = {}
    for job_id, user_id in owners.items():
        seqs[job_id] = following[user_id]
        following[user_id] += 1
    return seqs


def current(user_id: int) -> int:
    """The user's last number (0 before their first job)."""
    return EventCounter.objects.filter(user_id=user_id).values_list("seq", flat=True).first() or 0
