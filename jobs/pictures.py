"""Results shown beyond their owner: the catalogue's shared example pictures, and the file name
a result downloads under."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Subquery

from jobs.files import has_preview
from jobs.models import Job, JobFile
from jobs.presenters import file_url
from workflows.models import Workflow


def newest_shared_results(slugs) -> dict[str, JobFile]:
    """For each workflow slug, the newest still picture of a finished job whose owner marked it
    shareable (any version of the workflow), in one query for all the slugs: each slug's pick
    is a subquery that walks the partial index on shared jobs (job_shareable_idx)."""
    slugs = list(slugs)
    if not slugs:
        return {}
    newest = (
        JobFile.objects.filter(
            kind=JobFile.Kind.RESULT,
            media=JobFile.Media.IMAGE,
            job__shareable=True,
            job__status=Job.Status.DONE,
            job__workflow__slug=OuterRef("slug"),
        )
        .order_by("-job__finished_at", "source_ref", "created_at")
        .values("pk")[:1]
    )
    # One pick per slug (its versions share it); the slugs' rows are few, the files many.
    picks = (
        Workflow.objects.filter(slug__in=slugs).order_by().values("slug").distinct().annotate(pick=Subquery(newest))
    ).values("pick")
    files = (
        JobFile.objects.filter(pk__in=picks)
        .order_by()
        .select_related("job__workflow")
        .only("id", "kind", "media", "content_type", "width", "height", "thumbnail", "job__workflow__slug")
    )
    return {record.job.workflow.slug: record for record in files}


def shared_card_pictures(sender, slugs, **kwargs) -> dict[str, dict]:
    """workflows' `card_pictures_wanted`: the shared results as catalogue pictures."""
    return {
        slug: {"url": file_url(record, thumb=has_preview(record)), "width": record.width, "height": record.height}
        for slug, record in newest_shared_results(slugs).items()
    }


def workflows_with_results(user, language: str | None = None) -> list[tuple[str, str]]:
    """(slug, name in `language`) of the workflows `user` has finished jobs with results of, for the gallery's
    filter: one EXISTS per workflow version, from the user's jobs of it (job_user_workflow_idx)
    to their first result, not a scan of all the results."""
    has_results = JobFile.objects.filter(
        job__user=user, job__workflow=OuterRef("pk"), job__status=Job.Status.DONE, kind=JobFile.Kind.RESULT
    )
    names = {}
    for workflow in (
        Workflow.objects.filter(Exists(has_results)).order_by("slug", "-created_at").only("slug", "name", "names")
    ):
        names.setdefault(workflow.slug, workflow.name_in(language))  # the newest version's name
    return sorted(names.items(), key=lambda w: w[1] or "")


def download_name(record: JobFile, *, slug: str | None = None, results: int | None = None) -> str:
    """`<workflow slug>-<first 8 of the job id>-<n>.<ext>` for a result (n counts from 1 in the
    order the job page shows them); the uploaded name for an upload. ``slug`` and ``results``
    (the job's result count), when the caller read them already, save reading them here."""
    ext = name_extension(record.file.name)
    if record.kind != JobFile.Kind.RESULT or record.job_id is None:
        return record.original_name or f"{record.pk}{ext}"
    number = 1
    if results != 1:  # the only result is the first: no need to read its siblings
        siblings = JobFile.objects.filter(job_id=record.job_id, kind=JobFile.Kind.RESULT).values_list(
            "id", "source_ref", "created_at"
        )
        order = [pk for pk, *_ in sorted(siblings, key=lambda row: (row[1], row[2]))]
        number = order.index(record.pk) + 1 if record.pk in order else 1
    slug = slug if slug is not None else record.job.workflow.slug
    return f"{slug}-{str(record.job_id)[:8]}-{number}{ext}"


def name_extension(name: str) -> str:
    """The extension of a stored file's name, lower case, with its dot ("" when none)."""
    tail = name.rsplit("/", 1)[-1]
    return tail[tail.rfind(".") :].lower() if "." in tail else ""
