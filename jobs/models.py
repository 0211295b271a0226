from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def quota_day_start():
    """Midnight in the site's time zone: daily job limits count from here."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


class Job(models.Model):
    """One run of a workflow for a user. The row is the truth; the broker only wakes workers.

    Lifecycle (enforced in jobs/lifecycle.py): QUEUED → RUNNING → DONE | ERROR | CANCELLED,
    and RUNNING → QUEUED when its node dies (attempts + 1).
    """

    class Status(models.TextChoices):
        QUEUED = "QUEUED", _("Queued")
        RUNNING = "RUNNING", _("Running")
        DONE = "DONE", _("Done")
        ERROR = "ERROR", _("Error")
        CANCELLED = "CANCELLED", _("Cancelled")

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.DONE, Status.ERROR, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs", verbose_name=_("user")
    )
    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.PROTECT, related_name="jobs", verbose_name=_("workflow")
    )
    node = models.ForeignKey(
        "nodes.ComfyNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        verbose_name=_("GPU server"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    inputs = models.JSONField(_("inputs"), default=dict)
    prompt_id = models.CharField(max_length=36, blank=True, db_index=True, verbose_name=_("prompt ID"))
    client_id = models.CharField(max_length=80, blank=True, verbose_name=_("client ID"))
    progress = models.FloatField(_("progress"), default=0.0)
    progress_text = models.CharField(max_length=200, blank=True, verbose_name=_("progress text"))
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    priority = models.SmallIntegerField(_("priority"), default=0)
    cancel_requested = models.BooleanField(default=False, verbose_name=_("cancel requested"))
    # Which runner follows the job, and when it last said so (a stale heartbeat = a dead runner).
    runner_id = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("runner ID"))
    heartbeat_at = models.DateTimeField(null=True, blank=True, verbose_name=_("runner's last heartbeat"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("sent to the GPU server"), null=True, blank=True)
    # The node finished the prompt (its slot is free again) while we may still be collecting outputs.
    node_finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished on the GPU server"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The model files its prompt names ("folder/name", sorted), found at submit (jobs.routing):
    # dispatch sends the job only to a node that has them all.
    model_files = models.JSONField(_("model files"), default=list, blank=True)
    # Where to POST this job's status events, besides its owner's registered endpoints (webhooks app).
    webhook_url = models.CharField(_("webhook URL"), max_length=2000, blank=True)
    # Usage, written when the job ends (jobs.steps.usage_of): the node's execution time of the
    # attempt that ended it, the wait from submit to that attempt's start, and its outputs.
    gpu_seconds = models.FloatField(_("GPU seconds"), null=True, blank=True)
    queue_seconds = models.FloatField(_("queue seconds"), null=True, blank=True)
    output_count = models.PositiveIntegerField(_("outputs"), default=0)
    output_bytes = models.PositiveBigIntegerField(_("output bytes"), default=0)
    # The owner's event sequence number of the job's last change (jobs.cursors): /ws/jobs/
    # resumes a reconnecting client from it. Set in the same transaction as each change.
    seq = models.PositiveBigIntegerField(default=0, editable=False, verbose_name=_("event number"))
    # The owner lets the results be shown to every user as the workflow's example picture
    # (the catalogue shows the newest shareable result of each workflow: jobs.pictures).
    shareable = models.BooleanField(_("shareable"), default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        indexes = [
            # The catalogue's newest shareable result of each workflow: only the few shared jobs.
            models.Index(
                fields=["workflow", "-finished_at"], name="job_shareable_idx", condition=models.Q(shareable=True)
            ),
            # /ws/jobs/ resume: a user's jobs changed after a cursor, in order.
            models.Index(fields=["user", "seq"], name="job_user_seq_idx"),
            models.Index(fields=["status", "-priority", "created_at"], name="job_queue_idx"),
            models.Index(fields=["user", "-created_at"], name="job_user_idx"),
            models.Index(fields=["user", "status"], name="job_user_status_idx"),
            # The gallery's workflow filter (which workflows a user has results of) and the
            # API's ?workflow= on a user's jobs.
            models.Index(fields=["user", "workflow"], name="job_user_workflow_idx"),
            # Dispatch counts each waiting user's jobs started today (daily limit, round-robin):
            # without this, every step read all of those users' past jobs.
            models.Index(fields=["user", "started_at"], name="job_user_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.slug} {self.id} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class EventCounter(models.Model):
    """A user's last job event sequence number (see jobs.cursors): only ever goes up, so a
    cursor never names two changes, even after jobs are deleted.

    `user_id` has no foreign key constraint on purpose: a key check would take a lock on the
    user's row, which submits lock first (jobs.queries.lock_user), and the two could deadlock."""

    user_id = models.PositiveBigIntegerField(primary_key=True, verbose_name=_("user ID"))
    seq = models.PositiveBigIntegerField(default=0, verbose_name=_("event number"))

    class Meta:
        verbose_name = _("event counter")
        verbose_name_plural = _("event counters")

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.seq}"


def job_file_path(instance: JobFile, filename: str) -> str:
    folder = "results" if instance.kind == JobFile.Kind.RESULT else "uploads"
    return f"{folder}/{instance.owner_id}/{instance.id}{_suffix(filename)}"


def thumbnail_path(instance: JobFile, filename: str) -> str:
    return f"thumbs/{instance.owner_id}/{instance.id}{_suffix(filename)}"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot != -1 and len(filename) - dot <= 6 else ""


class JobFile(models.Model):
    """An uploaded input (image, mask, video or sound) or a result file. Served only through
    auth-checked views. ``kind`` is its role; ``media`` what it holds, read from its bytes."""

    class Kind(models.TextChoices):
        IMAGE = "IMAGE", _("Image")
        MASK = "MASK", _("Mask")
        RESULT = "RESULT", _("Result")
        VIDEO = "VIDEO", _("Video")
        AUDIO = "AUDIO", _("Audio")

    class Media(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")  # animations (animated WebP/PNG/GIF) too
        AUDIO = "audio", _("Audio")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="files", verbose_name=_("owner")
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="files", verbose_name=_("job")
    )
    kind = models.CharField(max_length=6, choices=Kind.choices, verbose_name=_("kind"))
    file = models.FileField(upload_to=job_file_path, max_length=300, verbose_name=_("file"))
    thumbnail = models.FileField(upload_to=thumbnail_path, max_length=300, blank=True, verbose_name=_("thumbnail"))
    original_name = models.CharField(max_length=255, blank=True, verbose_name=_("original name"))
    content_type = models.CharField(max_length=100, verbose_name=_("content type"))
    width = models.PositiveIntegerField(default=0, verbose_name=_("width"))
    height = models.PositiveIntegerField(default=0, verbose_name=_("height"))
    size = models.PositiveBigIntegerField(default=0, verbose_name=_("size"))
    media = models.CharField(max_length=5, choices=Media.choices, default=Media.IMAGE, verbose_name=_("media"))
    # For video and audio, as decoded (PyAV): seconds, frames, frames per second, samples per second.
    duration = models.FloatField(null=True, blank=True, verbose_name=_("duration"))
    frame_count = models.PositiveIntegerField(default=0, verbose_name=_("frame count"))
    frame_rate = models.FloatField(null=True, blank=True, verbose_name=_("frame rate"))
    sample_rate = models.PositiveIntegerField(default=0, verbose_name=_("sample rate"))
    sha256 = models.CharField(max_length=64, verbose_name=_("SHA-256"))
    # For results: where the node stored it, so a re-collection never stores a file twice.
    source_ref = models.CharField(max_length=500, blank=True, verbose_name=_("name on the GPU server"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("job file")
        verbose_name_plural = _("job files")
        constraints = [
            models.UniqueConstraint(
                fields=["job", "source_ref"], condition=models.Q(kind="RESULT"), name="jobfile_result_once"
            ),
        ]
        indexes = [
            # The gallery: a user's results newest first, a page from a cursor (core.pagination).
            models.Index(fields=["owner", "kind", "-created_at", "-id"], name="jobfile_gallery_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` a user sent with a submit, for IDEMPOTENCY_HOURS: the same key with
    the same body gives the same job again; with another body, a 422 (jobs/idempotency.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    key = models.CharField(max_length=255, verbose_name=_("key"))
    fingerprint = models.CharField(
        max_length=64, help_text=_("SHA-256 of the request's operation and body."), verbose_name=_("fingerprint")
    )
    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("job"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once")]
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")

    def __str__(self) -> str:
        return f"{self.key} → {self.job_id}"


class FailedAttempt(models.Model):
    """An attempt of a job that its node failed (the job was requeued, or given up): listed in
    usage apart from the job's own figures, which are those of the attempt that ended it."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="failed_attempts", verbose_name=_("job"))
    number = models.PositiveSmallIntegerField(verbose_name=_("number"))
    node_name = models.CharField(max_length=100, blank=True, verbose_name=_("GPU server"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    ended_at = models.DateTimeField(db_index=True, verbose_name=_("ended at"))
    reason = models.CharField(max_length=500, blank=True, verbose_name=_("reason"))

    class Meta:
        ordering = ["job", "number"]
        verbose_name = _("failed attempt")
        verbose_name_plural = _("failed attempts")

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.job_id}"
