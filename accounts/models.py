from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person or program using comfyportal. ADMIN implies ``is_staff`` (Django Admin access)."""

    class Role(models.TextChoices):
        USER = "USER", _("User")
        ADMIN = "ADMIN", _("Admin")

    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.USER)
    is_blocked = models.BooleanField(_("blocked"), default=False)
    blocked_reason = models.CharField(_("blocked reason"), max_length=500, blank=True)
    max_concurrent_jobs = models.PositiveIntegerField(
        _("max concurrent jobs"), null=True, blank=True, help_text=_("Empty = site default.")
    )
    max_queued_jobs = models.PositiveIntegerField(
        _("max queued jobs"), null=True, blank=True, help_text=_("Empty = site default.")
    )
    daily_job_limit = models.PositiveIntegerField(
        _("daily job limit"), null=True, blank=True, help_text=_("Empty = site default.")
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=1, help_text=_("Share of the GPUs when several users wait (1 = normal).")
    )
    storage_quota_mb = models.PositiveIntegerField(
        _("storage quota (MiB)"),
        null=True,
        blank=True,
        help_text=_("Uploads and results kept at once. Empty = site default."),
    )
    # Bytes of the user's stored files (uploads and results); kept up to date by the jobs part
    # as files come and go, so checking the quota costs no query.
    storage_used = models.PositiveBigIntegerField(_("storage used (bytes)"), default=0, editable=False)
    token_version = models.PositiveIntegerField(
        _("token version"),
        default=0,
        editable=False,
        help_text=_("Every JWT carries it; raising it revokes all of the user's tokens at once."),
    )

    def save(self, *args, **kwargs):
        if self._password is not None and self.pk is not None:
            # A new password (set_password, not a hash upgrade) ends every token issued under the old one.
            self.token_version += 1
            update_fields = kwargs.get("update_fields")
            if update_fields is not None and "token_version" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "token_version"]
        # The role is the one switch admins use; staff/superuser follow it.
        if self.role == self.Role.ADMIN:
            self.is_staff = True
            self.is_superuser = True
        elif not self.is_superuser or self.role == self.Role.USER:
            self.is_staff = False
            self.is_superuser = False
        super().save(*args, **kwargs)

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN and self.is_active

    @property
    def effective_max_concurrent_jobs(self) -> int:
        return _or_default(self.max_concurrent_jobs, "max_concurrent_jobs")

    @property
    def effective_max_queued_jobs(self) -> int:
        return _or_default(self.max_queued_jobs, "max_queued_jobs")

    @property
    def effective_daily_job_limit(self) -> int:
        return _or_default(self.daily_job_limit, "daily_job_limit")

    @property
    def effective_storage_quota(self) -> int:
        """In bytes."""
        return _or_default(self.storage_quota_mb, "storage_quota_mb") * 1024 * 1024


def _or_default(value: int | None, name: str) -> int:
    return value if value is not None else SiteSettings.default_for(name)


class SiteSettings(models.Model):
    """Site-wide default limits that admins change while the service runs (a single row).

    An empty value falls back to the DEFAULT_* setting from the environment.
    """

    max_concurrent_jobs = models.PositiveIntegerField(
        _("default max concurrent jobs"), null=True, blank=True, help_text=_("Empty = DEFAULT_MAX_CONCURRENT_JOBS.")
    )
    max_queued_jobs = models.PositiveIntegerField(
        _("default max queued jobs"), null=True, blank=True, help_text=_("Empty = DEFAULT_MAX_QUEUED_JOBS.")
    )
    daily_job_limit = models.PositiveIntegerField(
        _("default daily job limit"), null=True, blank=True, help_text=_("Empty = DEFAULT_DAILY_JOB_LIMIT.")
    )
    storage_quota_mb = models.PositiveIntegerField(
        _("default storage quota (MiB)"), null=True, blank=True, help_text=_("Empty = DEFAULT_STORAGE_QUOTA_MB.")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    CACHE_SECONDS = 5.0  # every process sees an admin's change within this time
    _cached: tuple[float, dict] | None = None

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __str__(self) -> str:
        return str(_("Site default limits"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)
        SiteSettings._cached = None

    @classmethod
    def default_for(cls, name: str) -> int:
        now = time.monotonic()
        if cls._cached is None or now - cls._cached[0] > cls.CACHE_SECONDS:
            row = (
                cls.objects.filter(pk=1)
                .values("max_concurrent_jobs", "max_queued_jobs", "daily_job_limit", "storage_quota_mb")
                .first()
            )
            cls._cached = (now, row or {})
        value = cls._cached[1].get(name)
        if value is None:
            value = getattr(settings, f"DEFAULT_{name.upper()}")
        return int(value or 0)


class ApiKey(models.Model):
    """A named key a program sends instead of a JWT (`Authorization: Bearer cpk_…`).

    The key is shown once; only its SHA-256 is kept (a key is 190 random bits, so a fast hash
    is as safe as a slow one and costs nothing per request). Its public prefix identifies it
    in lists and logs and finds the row.
    """

    class Scope(models.TextChoices):
        JOBS_READ = "jobs:read", _("Read jobs, workflows and usage")
        JOBS_WRITE = "jobs:write", _("Start, cancel and delete jobs; manage webhooks")
        FILES = "files", _("Upload and download files")
        ADMIN = "admin", _("Administration (admins only)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=24, unique=True)
    hashed_key = models.CharField(max_length=64, verbose_name=_("hashed key"))
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
