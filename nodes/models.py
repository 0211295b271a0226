from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class ComfyNode(models.Model):
    """One ComfyUI server (a GPU node). Admins set the first block; health is kept by the service."""

    class Status(models.TextChoices):
        UNKNOWN = "UNKNOWN", _("Unknown")
        ONLINE = "ONLINE", _("Online")
        OFFLINE = "OFFLINE", _("Offline")

    name = models.CharField(_("name"), max_length=100, unique=True)
    base_url = models.CharField(_("base URL"), max_length=500, help_text=_("e.g. http://10.0.0.5:8188"))
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Off = gets no new jobs (drain)."))
    max_queue = models.PositiveSmallIntegerField(
        _("max queue"),
        default=2,
        validators=[MinValueValidator(1)],
        help_text=_("Prompts allowed outstanding on the GPU server at once."),
    )
    priority = models.SmallIntegerField(_("priority"), default=0, help_text=_("Higher first."))
    auth_header = models.CharField(
        _("auth header"),
        max_length=1000,
        blank=True,
        help_text=_("For GPU servers behind a proxy, e.g. 'Authorization: Bearer …'. Never shown again."),
    )

    remove_when_drained = models.BooleanField(
        _("remove when drained"),
        default=False,
        help_text=_("Deleted by an admin while jobs ran: removed once they finish."),
    )

    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.UNKNOWN)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, verbose_name=_("consecutive failures"))
    queue_remaining = models.PositiveIntegerField(_("queue"), default=0)
    foreign_queue = models.PositiveIntegerField(
        _("foreign queue"), default=0, help_text=_("Prompts on the GPU server that did not come from comfyportal.")
    )
    system_stats = models.JSONField(default=dict, blank=True, verbose_name=_("system stats"))
    class_types = models.JSONField(default=list, blank=True, verbose_name=_("node classes"))
    class_types_refreshed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("node classes read at"))
    # Model inventory (nodes.inventory): {folder: [file, …]} as the node's /models answered,
    # read with its class list; on a failed read the last one is kept and marked stale.
    inventory = models.JSONField(_("model files"), default=dict, blank=True)
    inventory_read_at = models.DateTimeField(_("models read at"), null=True, blank=True)
    inventory_stale = models.BooleanField(_("model list stale"), default=False)
    inventory_error = models.CharField(max_length=500, blank=True, verbose_name=_("model list error"))
    # {class: {input: {"folder", "builtin"}}}: which inputs of its /object_info take model files.
    model_inputs = models.JSONField(default=dict, blank=True, verbose_name=_("model file inputs"))
    # Model affinity: the model files ("folder/name") of the last prompt sent to the node, which
    # ComfyUI still holds loaded; one per line. Written by dispatch only (no updated_at change).
    held_models = models.TextField(_("models held"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-priority", "name"]
        verbose_name = _("GPU server")
        verbose_name_plural = _("GPU servers")
        constraints = [models.CheckConstraint(condition=models.Q(max_queue__gte=1), name="node_max_queue_positive")]

    def __str__(self) -> str:
        return self.name

    @property
    def held_model_keys(self) -> list[str]:
        return [line for line in self.held_models.splitlines() if line]

    @property
    def model_count(self) -> int:
        return sum(len(names) for names in (self.inventory or {}).values())

    @property
    def figures_are_live(self) -> bool:
        """Only an online node's last /system_stats and queue describe it now; an offline or
        unchecked node's are stale and are not shown as if live."""
        return self.status == self.Status.ONLINE

    @property
    def live_queue(self) -> int | None:
        """Prompts outstanding on the node, None when its figures are not live."""
        return self.queue_remaining if self.figures_are_live else None

    @property
    def vram(self) -> tuple[int | None, int | None]:
        """(free, total) bytes of the first device from the last /system_stats, (None, None) when
        the node's figures are not live."""
        devices = (self.system_stats or {}).get("devices") or []
        if not self.figures_are_live or not devices:
            return None, None
        if not devices:
            return None, None
        return devices[0].get("vram_free"), devices[0].get("vram_total")
