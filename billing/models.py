from __future__ import annotations

import time
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 4}


class BillingSettings(models.Model):
    """Whether jobs cost credits (a single row; off by default)."""

    enabled = models.BooleanField(_("billing on"), default=False)
    currency = models.CharField(_("currency"), max_length=12, default="credits")
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    CACHE_SECONDS = 5.0  # every process sees an admin's change within this time
    _cached: tuple[float, dict] | None = None

    class Meta:
        verbose_name = _("billing settings")
        verbose_name_plural = _("billing settings")

    def __str__(self) -> str:
        return str(_("Billing"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)
        BillingSettings._cached = None

    @classmethod
    def current(cls) -> dict:
        now = time.monotonic()
        if cls._cached is None or now - cls._cached[0] > cls.CACHE_SECONDS:
            row = cls.objects.filter(pk=1).values("enabled", "currency").first()
            cls._cached = (now, row or {"enabled": False, "currency": "credits"})
        return cls._cached[1]


class WorkflowPrice(models.Model):
    """The price of a workflow's jobs (all its versions): per job and per GPU second.

    A job holds its most: the price per job plus `max_gpu_seconds` GPU seconds; when it ends it
    costs the price per job plus its GPU seconds (at most `max_gpu_seconds`), and the rest of
    the hold comes back. A workflow without a price is free."""

    workflow_slug = models.SlugField(_("workflow"), max_length=100, unique=True)
    per_job = models.DecimalField(_("price per job"), default=Decimal("0"), **MONEY)
    per_gpu_second = models.DecimalField(_("price per GPU second"), default=Decimal("0"), **MONEY)
    max_gpu_seconds = models.PositiveIntegerField(
        _("most GPU seconds billed"), default=60, help_text=_("A job holds this many GPU seconds at submit.")
    )

    class Meta:
        verbose_name = _("workflow price")
        verbose_name_plural = _("workflow prices")

    def __str__(self) -> str:
        return self.workflow_slug


class LedgerEntry(models.Model):
    """One change of a user's balance; entries are never changed or deleted, and the balance is
    their sum."""

    class Kind(models.TextChoices):
        TOPUP = "TOPUP", _("Top-up")
        ADJUST = "ADJUST", _("Adjustment")
        HOLD = "HOLD", _("Hold")
        SETTLE = "SETTLE", _("Settled")
        RELEASE = "RELEASE", _("Released")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger", verbose_name=_("user")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("job")
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [models.Index(fields=["user", "-created_at"], name="ledger_user_idx")]
        constraints = [
            # A job's hold ends once: settled or released, never both, never twice.
            models.UniqueConstraint(
                fields=["job"], condition=models.Q(kind__in=["SETTLE", "RELEASE"]), name="ledger_job_ends_once"
            ),
            models.UniqueConstraint(fields=["job"], condition=models.Q(kind="HOLD"), name="ledger_job_holds_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} for {self.user_id}"
