from __future__ import annotations

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

    def save(self, *args, **kwargs):
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
        return _or_default(self.max_concurrent_jobs, settings.DEFAULT_MAX_CONCURRENT_JOBS)

    @property
    def effective_max_queued_jobs(self) -> int:
        return _or_default(self.max_queued_jobs, settings.DEFAULT_MAX_QUEUED_JOBS)

    @property
    def effective_daily_job_limit(self) -> int:
        return _or_default(self.daily_job_limit, settings.DEFAULT_DAILY_JOB_LIMIT)


def _or_default(value: int | None, default: int | None) -> int:
    return value if value is not None else int(default or 0)
