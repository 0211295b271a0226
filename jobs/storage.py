"""Storage per user: the quota and the running count of bytes kept (unused uploads expire in
jobs/retention.py).

What counts: every stored file of the user — uploads of any kind and results — by its stored
size (`JobFile.size`: for an image upload the normalized PNG, not the bytes sent). Thumbnails
(a few KB each) are not counted. The count is a column on the user (`User.storage_used`), moved
by each file saved or deleted (the receivers below, connected in JobsConfig.ready(), so that a
cascade from a job or the Django Admin counts too; an upload is inserted with its count,
jobs.queries.insert_file, and a job's results, inserted together, count theirs in one step),
and recounted from the files by the hourly clean-up in case something went around them.
Checking the quota therefore reads only the user row, which every request has loaded already.

Uploads are refused when they would not fit (413); a job is refused while the user's storage is
full (409), since its results would add more. Results themselves are always kept: a job that
was accepted never loses its work.
"""

from __future__ import annotations

from django.db.models import OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from accounts.models import User
from core.errors import Conflict, TooLarge
from jobs import queries
from jobs.models import JobFile


class QuotaExceeded(TooLarge):
    """413: an upload that does not fit in the user's storage quota."""


class StorageFull(Conflict):
    """409: a job refused while the user's storage is full."""


def _usage(user) -> tuple[int, int]:
    return user.storage_used, user.effective_storage_quota


def check_room_for_upload(user, size: int, *, fresh: bool = False) -> None:
    """QuotaExceeded unless `size` more bytes fit. `fresh` reads the count again (after a
    decode that took seconds, other files may have come or gone meanwhile)."""
    if fresh:
        user.storage_used = User.objects.filter(pk=user.pk).values_list("storage_used", flat=True).first() or 0
    used, limit = _usage(user)
    if used + size <= limit:
        return
    detail = _(
        "storage: this file needs %(size)s, but %(used)s of your %(limit)s are in use. "
        "Delete files or jobs you no longer need."
    ) % {"size": filesizeformat(size), "used": filesizeformat(used), "limit": filesizeformat(limit)}
    raise QuotaExceeded(detail, errors={"file": detail}, extra={"used": used, "limit": limit})


def check_room_for_job(user) -> None:
    """StorageFull while the user's files fill the quota: the job's results would not fit."""
    used, limit = _usage(user)
    if used < limit:
        return
    detail = _(
        "storage: %(used)s of your %(limit)s are in use, so a new job's results would not fit. "
        "Delete files or jobs you no longer need."
    ) % {"used": filesizeformat(used), "limit": filesizeformat(limit)}
    raise StorageFull(detail, extra={"used": used, "limit": limit})


# --- The running count (receivers connected in JobsConfig.ready()) -----------------------


def count_saved_file(sender, instance: JobFile, created: bool, **kwargs) -> None:
    if created and instance.size:
        _add(instance.owner_id, instance.size)


def count_deleted_file(sender, instance: JobFile, **kwargs) -> None:
    if instance.size:
        _add(instance.owner_id, -instance.size)


def count_stored_results(owner_id, size: int) -> None:
    """A job's results, inserted together without post_save (jobs.files.store_results): their
    bytes in one UPDATE."""
    _add(owner_id, size)


def _add(owner_id, size: int) -> None:
    queries.add_storage_used(owner_id, size)


def recount() -> int:
    """Set every user's count from their files, where it differs. Returns how many changed."""
    actual = Coalesce(
        Subquery(
            JobFile.objects.filter(owner=OuterRef("pk"))
            .order_by()
            .values("owner")
            .annotate(total=Sum("size"))
            .values("total")
        ),
        Value(0),
    )
    return User.objects.filter(~Q(storage_used=actual)).update(storage_used=actual)
