"""The raw SQL of jobs, each statement a small function returning plain values.

Most of these run on every submit or every dispatch step: written as SQL and read as tuples
because compiling the ORM query and building models cost more than the database spent
answering. Each function says in one line why it is SQL; everything else uses the ORM.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from functools import cache
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from core.bulk_update import update_each
from core.rows import columns, from_row
from jobs.models import Job, JobFile
from nodes.models import ComfyNode
from workflows.models import Workflow

S = Job.Status
JOBS = Job._meta.db_table
FILES = JobFile._meta.db_table


def _db_datetime(value):
    return Job._meta.get_field("created_at").get_db_prep_value(value, connection)


# Submit


def lock_user(user_id: int) -> None:
    """Serialize one user's submits (inside a transaction), so that two at once cannot both
    pass a quota with one place left. (SQLite has no row locks: it serializes writers itself.)

    SQL: every submit runs it, and the ORM spent longer compiling it than the database locking."""
    if not connection.features.has_select_for_update:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {get_user_model()._meta.db_table} WHERE id = %s FOR UPDATE", [user_id])


class QueueAndQuotas(NamedTuple):
    queued: int  # the user's queued jobs
    today: int  # the user's jobs created since the quota day began
    queued_per_user: list[tuple[int, int]]  # (user id, their queued jobs) for every user with some
    busy: dict[int, int]  # busy_slots of the nodes asked about


def queue_and_quotas(user_id: int, day_start, node_ids: list[int] | tuple = ()) -> QueueAndQuotas:
    """The user's queued jobs and their jobs created since `day_start` (for the quotas),
    (user id, their queued jobs) for every user with queued jobs (a new job's queue position),
    and the busy slots of `node_ids` (why the new job waits, if it does).

    SQL: every submit runs it; one statement for what were three, and the ORM spent longer
    compiling any of them than the database answering."""
    start = _db_datetime(day_start)
    sql = f"""SELECT user_id, COUNT(*) FILTER (WHERE status = %s), COUNT(*) FILTER (WHERE created_at >= %s), NULL
              FROM {JOBS} WHERE status = %s OR (user_id = %s AND created_at >= %s) GROUP BY user_id"""
    params = [S.QUEUED, start, S.QUEUED, user_id, start]
    if node_ids:
        sql += f" UNION ALL SELECT NULL, COUNT(*), 0, node_id {_BUSY.format(nodes=', '.join(['%s'] * len(node_ids)))}"
        params += [S.RUNNING, *node_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    counts = [row[:3] for row in rows if row[3] is None]
    own = next(((queued, today) for uid, queued, today in counts if uid == user_id), (0, 0))
    busy = {node_id: slots for _, slots, _, node_id in rows if node_id is not None}
    return QueueAndQuotas(own[0], own[1], [(uid, queued) for uid, queued, _ in counts if queued], busy)


def insert_job(job: Job) -> None:
    """INSERT a job built in Python (its defaults filled by the model) as save() would; there
    are no save signals on jobs to miss (job_created is sent by the submit).

    SQL: every submit runs it, and the ORM's INSERT compile cost more than the database's answer."""
    with connection.cursor() as cursor:
        cursor.execute(*_insert_statement([job]))
    _mark_saved(job)


def _insert_statement(instances: list) -> tuple[str, list]:
    """The INSERT of model instances built in Python (their defaults filled by the model, their
    fields' pre_save run as save() runs them: created_at, a file not yet committed), one row each."""
    model = type(instances[0])
    fields = model._meta.local_concrete_fields
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for instance in instances for field in fields
    ]
    row = f"({', '.join(['%s'] * len(fields))})"
    return f"{_insert_into(connection.vendor, model)} VALUES {', '.join([row] * len(instances))}", params


@cache  # made on every insert otherwise, for as much CPU as the row's values
def _insert_into(vendor: str, model) -> str:
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in model._meta.local_concrete_fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({names})"


def _mark_saved(instance) -> None:
    instance._state.adding, instance._state.db = False, connection.alias


# Dispatch (every step runs these, many times a second under load)

# The nodes dispatch may use, defined once for both the step's lock and the "is any usable?" check.
_ELIGIBLE = f"FROM {ComfyNode._meta.db_table} WHERE is_active = %s AND status = %s AND remove_when_drained = %s"
_ELIGIBLE_PARAMS = (True, ComfyNode.Status.ONLINE, False)


class EligibleNode(NamedTuple):
    pk: int
    priority: int
    max_queue: int
    foreign_queue: int  # prompts others put on the node
    updated_at: object  # changes whenever the row is saved (see scheduler.known_nodes)
    held_models: str  # model files of the last prompt sent there, one per line


def lock_eligible_nodes() -> list[EligibleNode]:
    """Lock the active ONLINE nodes, by priority (inside a transaction); those another
    dispatcher holds are skipped.

    SQL: the ORM's compile and a model per node cost more than the database's answer."""
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, priority, max_queue, foreign_queue, updated_at, held_models {_ELIGIBLE} "
            f"ORDER BY priority DESC, id{lock}",
            _ELIGIBLE_PARAMS,
        )
        return [EligibleNode(*row) for row in cursor.fetchall()]


def any_eligible_node() -> bool:
    """Is any node usable at all (whoever holds its lock)?

    SQL: it shares its definition of "usable" with lock_eligible_nodes, so the two never differ."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 {_ELIGIBLE} LIMIT 1", _ELIGIBLE_PARAMS)
        return cursor.fetchone() is not None


def mark_node_finished(job_ids, at) -> None:
    """The nodes finished these jobs' prompts at `at`: their slots are free.

    SQL: most steps under load start with it (the ORM's compile cost more than the UPDATE)."""
    pks = [Job._meta.pk.get_db_prep_value(uuid.UUID(str(pk)), connection) for pk in job_ids]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {JOBS} SET node_finished_at = %s
                WHERE node_finished_at IS NULL AND id IN ({", ".join(["%s"] * len(pks))})""",
            [_db_datetime(at), *pks],
        )


# Our jobs holding a slot of one of the nodes: RUNNING and not yet finished there.
_BUSY = f"FROM {JOBS} WHERE status = %s AND node_finished_at IS NULL AND node_id IN ({{nodes}}) GROUP BY node_id"


def busy_slots(node_ids: list[int]) -> dict[int, int]:
    """{node id: our jobs holding one of its slots}: RUNNING and not yet finished on the node.

    SQL: the ORM's GROUP BY compile cost more than the database's answer, on every step."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT node_id, COUNT(*) {_BUSY.format(nodes=', '.join(['%s'] * len(node_ids)))}",
            [S.RUNNING, *node_ids],
        )
        return dict(cursor.fetchall())


class UserLoad(NamedTuple):
    """What dispatch weighs of a user with jobs waiting."""

    running: int
    started_today: int  # since the quota day began
    last_served: object  # their latest start in the last day (a datetime), or None


def _read_datetime(value):
    """A datetime read by raw SQL: SQLite gives text, which the ORM would have converted."""
    if isinstance(value, str):
        return connection.ops.convert_datetimefield_value(value, None, connection)
    return value


class QueuedJob(NamedTuple):
    """What dispatch reads of a queued job."""

    pk: uuid.UUID
    user_id: int
    workflow_id: int
    priority: int
    created_at: object  # only compared with the others from the same query
    model_files: frozenset = frozenset()  # keys "folder/name" (see jobs.routing)
    overdue: bool = False  # waited past MODEL_AFFINITY_MAX_WAIT (the scheduler keeps it only for starving models)


def _json_list(value) -> frozenset:
    """A JSON column read through a raw cursor: text on some backends, decoded on others."""
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return frozenset(value or [])


def set_held_models(held: dict[int, list[str]]) -> None:
    """Remember what each node now holds (the model files of the last prompt sent there), in
    one UPDATE; inside dispatch's transaction, on nodes it has locked. Leaves updated_at
    alone, so the nodes' kept rows stay valid."""
    update_each(ComfyNode, {node_id: ("\n".join(sorted(keys)),) for node_id, keys in held.items()}, ("held_models",))


class WaitingQueue(NamedTuple):
    users: dict  # {user id: user}, with only the fields dispatch reads (id, priority, the limits)
    loads: dict[int, UserLoad]
    heads: dict[int, list[QueuedJob]]  # each user's first queued jobs, by priority then age


def waiting_queue(per_user: int, day_start, served_since, overdue_before=None) -> WaitingQueue:
    """The users not blocked with queued jobs, each with their load (running jobs, jobs
    started since `day_start`, their latest start since `served_since`) and their first
    `per_user` queued jobs, in one query (a user with queued jobs has at least one row).
    `overdue_before`: jobs created before it are marked overdue (compared by the database: a
    raw read of a date is text on some backends).

    SQL: every step that finds free slots runs it, one statement for what were three; the
    ORM spent longer compiling its window query and building models than the database spent
    running it. Users come as models (the effective_* limits work on them)."""
    User = get_user_model()
    cutoff = _db_datetime(overdue_before or timezone.now() - timedelta(days=3650))
    start, since = _db_datetime(day_start), _db_datetime(served_since)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH waiting AS (
                  SELECT id, priority, max_concurrent_jobs, daily_job_limit FROM {User._meta.db_table}
                  WHERE is_blocked = %s AND id IN (SELECT user_id FROM {JOBS} WHERE status = %s)
                ), user_load AS (
                  SELECT user_id, COUNT(*) FILTER (WHERE status = %s) AS running,
                         COUNT(*) FILTER (WHERE started_at >= %s) AS started_today,
                         MAX(started_at) FILTER (WHERE started_at >= %s) AS last_served
                  FROM {JOBS} WHERE (status = %s OR started_at >= %s) AND user_id IN (SELECT id FROM waiting)
                  GROUP BY user_id
                ), ranked AS (
                  SELECT id, user_id, workflow_id, priority, created_at, model_files,
                         ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY priority DESC, created_at ASC) AS queue_rank
                  FROM {JOBS} WHERE status = %s AND user_id IN (SELECT id FROM waiting)
                )
                SELECT r.id, r.user_id, r.workflow_id, r.priority, r.created_at, r.model_files, r.created_at < %s,
                       w.priority, w.max_concurrent_jobs, w.daily_job_limit,
                       l.running, l.started_today, l.last_served
                FROM ranked r JOIN waiting w ON w.id = r.user_id LEFT JOIN user_load l ON l.user_id = r.user_id
                WHERE r.queue_rank <= %s ORDER BY r.user_id, r.queue_rank""",
            [
                *(False, S.QUEUED),
                *(S.RUNNING, start, since, S.RUNNING, _db_datetime(min(day_start, served_since))),
                S.QUEUED,
                cutoff,
                per_user,
            ],
        )
        rows = cursor.fetchall()
    queue = WaitingQueue({}, {}, {})
    # from_db takes the values in the model's field order.
    read = ("id", "priority", "max_concurrent_jobs", "daily_job_limit")
    user_fields = [f.attname for f in User._meta.concrete_fields if f.attname in read]
    for row in rows:
        job = QueuedJob(*row[:5], model_files=_json_list(row[5]), overdue=bool(row[6]))
        if job.user_id not in queue.users:
            values = dict(zip(read, (job.user_id, *row[7:10])))
            queue.users[job.user_id] = User.from_db(connection.alias, user_fields, [values[f] for f in user_fields])
            if row[10] is not None:  # some running or started: else no load
                queue.loads[job.user_id] = UserLoad(row[10], row[11], _read_datetime(row[12]))
        queue.heads.setdefault(job.user_id, []).append(job)
    return queue


# Queue position of one job (jobs.positions)


def queued_per_user(user_id: int, created_at) -> list[tuple[int, int, int]]:
    """[(user id, their queued jobs, how many of them `user_id` queued before `created_at`)].

    SQL: every submit answers with the new job's position, and the ORM took longer to compile
    this than the database to answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT user_id, COUNT(*), COUNT(*) FILTER (WHERE user_id = %s AND created_at < %s)
                FROM {JOBS} WHERE status = %s GROUP BY user_id""",
            [user_id, _db_datetime(created_at), S.QUEUED],
        )
        return cursor.fetchall()


# One job to show (GET /api/jobs/{id}: what polling clients repeat)

# What presenting a job reads of its workflow and node (jobs.presenters._job_dict, waiting_states):
# not the workflow's graph and spec, nor the node's lists of classes and model files.
_SHOWN_WORKFLOW = ("id", "slug", "name", "names", "version", "class_types")
_SHOWN_NODE = ("id", "name")


def job_to_present(job_id) -> tuple[Job, list[JobFile]] | None:
    """The job with this id, its workflow and node (the fields above; the others deferred)
    loaded, and its result files; None if there is none (a malformed id included).

    SQL: the ORM's compile of the joins and of the files' prefetch cost several times what the
    database spent answering them."""
    pk = _db_pk(Job, job_id)
    if pk is None:
        return None
    job_end = len(Job._meta.concrete_fields)
    workflow_end = job_end + len(_SHOWN_WORKFLOW)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {columns(Job, "j")}, {columns(Workflow, "w", _SHOWN_WORKFLOW)},
                       {columns(ComfyNode, "n", _SHOWN_NODE)}
                FROM {JOBS} j
                JOIN {Workflow._meta.db_table} w ON w.id = j.workflow_id
                LEFT JOIN {ComfyNode._meta.db_table} n ON n.id = j.node_id
                WHERE j.id = %s""",
            [pk],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            f"SELECT {_file_columns('f')} FROM {FILES} f WHERE f.job_id = %s AND f.kind = %s", [pk, JobFile.Kind.RESULT]
        )
        results = [_read_file(file_row) for file_row in cursor.fetchall()]
    job = from_row(Job, row[:job_end])
    job.workflow = from_row(Workflow, row[job_end:workflow_end], _SHOWN_WORKFLOW)
    job.node = None if row[workflow_end] is None else from_row(ComfyNode, row[workflow_end:], _SHOWN_NODE)
    return job, results


# Files


def file_to_view(file_id):
    """The JobFile with this id, or None (a malformed id included), carrying what deciding who
    may read it and naming its download needs: ``job_status``, ``job_shareable``,
    ``workflow_slug`` and ``result_count`` (its job's results; None without a job).

    SQL: every file download runs it, and the ORM's compile of the joins, or a RawQuerySet's
    mapping of the columns, cost more than the database spent answering."""
    pk = _db_pk(JobFile, file_id)
    if pk is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {_file_columns("f")}, j.status, j.shareable, w.slug,
                       (SELECT COUNT(*) FROM {FILES} r WHERE r.job_id = f.job_id AND r.kind = %s)
                FROM {FILES} f
                LEFT JOIN {JOBS} j ON j.id = f.job_id
                LEFT JOIN {Workflow._meta.db_table} w ON w.id = j.workflow_id
                WHERE f.id = %s""",
            [JobFile.Kind.RESULT, pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    record = _read_file(row)
    record.job_status, record.job_shareable, record.workflow_slug, record.result_count = row[len(_FILE_FIELDS) :]
    return record


_FILE_FIELDS = JobFile._meta.concrete_fields


def _file_columns(alias: str) -> str:
    """A JobFile's columns, in its fields' order (_read_file takes them so)."""
    return columns(JobFile, alias)


def _read_file(row) -> JobFile:
    """A JobFile from a row starting with its _file_columns."""
    return from_row(JobFile, row[: len(_FILE_FIELDS)])


def _file_pks(ids) -> dict:
    """{id as given: its database value} for the ids that are UUIDs (others name no file)."""
    return {raw: pk for raw in ids if (pk := _db_pk(JobFile, raw)) is not None}


def _db_pk(model, raw):
    """The database's value of `model`'s UUID primary key given as `raw` (a UUID or its text),
    None when `raw` is no UUID (an id from a request names no row then)."""
    try:
        return model._meta.pk.get_db_prep_value(uuid.UUID(str(raw)), connection)
    except ValueError:
        return None


class OwnedFile(NamedTuple):
    """What checking a job's uploads reads of a file (the JobFile fields of these names)."""

    pk: uuid.UUID
    kind: str
    media: str
    width: int
    height: int
    size: int
    duration: float | None
    frame_count: int


def owned_files(owner_id: int, ids) -> dict[str, OwnedFile]:
    """{id as given: OwnedFile} for those of `ids` that are files of `owner_id`.

    SQL: every submit with an upload runs it, and the ORM's compile and model building cost
    more than the query."""
    pks = _file_pks(ids)
    if not pks:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT id, kind, media, width, height, size, duration, frame_count FROM {FILES}
                WHERE owner_id = %s AND id IN ({", ".join(["%s"] * len(pks))})""",
            [owner_id, *pks.values()],
        )
        files = [OwnedFile(uuid.UUID(str(pk)), *rest) for pk, *rest in cursor.fetchall()]
    found = {file.pk: file for file in files}
    return {raw: found[key] for raw in pks if (key := uuid.UUID(str(raw))) in found}


def files_by_id(ids) -> dict:
    """{id as text: JobFile, every column} for those of `ids` that exist (a claimed job's input
    files, for its follower to send).

    SQL: every dispatch step that claims jobs with files runs it; the ORM's compile cost more."""
    pks = _file_pks(ids)
    if not pks:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_file_columns('f')} FROM {FILES} f WHERE f.id IN ({', '.join(['%s'] * len(pks))})",
            list(pks.values()),
        )
        records = [_read_file(row) for row in cursor.fetchall()]
    return {str(record.pk): record for record in records}


def attach_files(job_id, ids) -> int:
    """Give the unattached files among `ids` to the job; how many it took.

    SQL: every submit with an upload runs it (the ORM's compile of an UPDATE cost more than it)."""
    pks = _file_pks(ids)
    if not pks:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {FILES} SET job_id = %s
                WHERE job_id IS NULL AND id IN ({", ".join(["%s"] * len(pks))})""",
            [JobFile._meta.pk.get_db_prep_value(job_id, connection), *pks.values()],
        )
        return cursor.rowcount


def add_storage_used(user_id: int, size: int) -> None:
    """Add `size` bytes (negative: take them off) to the user's stored bytes, never below zero;
    one UPDATE, so that concurrent saves never lose each other's bytes.

    SQL: every upload and every result stored runs it, and the ORM's compile cost more than it."""
    users = get_user_model()._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {users} SET storage_used = CASE WHEN storage_used + %s < 0 THEN 0 ELSE storage_used + %s END
                WHERE id = %s""",
            [size, size, user_id],
        )


def insert_files_skipping_stored(records: list[JobFile]) -> set:
    """INSERT the rows, skipping any that a unique constraint says exist already; the ids of
    those inserted. (Not save(): its post_save would count each file's bytes in an UPDATE of
    its own.)"""
    insert, params = _insert_statement(records)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert} ON CONFLICT DO NOTHING RETURNING {connection.ops.quote_name(JobFile._meta.pk.column)}", params
        )
        inserted = {JobFile._meta.pk.to_python(pk) for (pk,) in cursor.fetchall()}
    for record in records:
        if record.pk in inserted:
            _mark_saved(record)
    return inserted


def insert_file(record) -> None:
    """INSERT a file's row built in Python and add its bytes to its owner's count
    (jobs.storage), both or neither, as save() with its post_save receiver would.

    SQL: every upload runs it, and the ORM's INSERT compile and the signal cost more than the
    statements. On PostgreSQL the two are one statement (a data-modifying WITH): one round trip,
    and no transaction to open and commit around it."""
    insert, params = _insert_statement([record])
    if connection.vendor == "postgresql":
        users = get_user_model()._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH stored AS ({insert} RETURNING size)
                    UPDATE {users} SET storage_used = storage_used + (SELECT size FROM stored) WHERE id = %s""",
                [*params, record.owner_id],
            )
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(insert, params)
            if record.size:
                add_storage_used(record.owner_id, record.size)
    _mark_saved(record)
