from __future__ import annotations

from django.conf import settings
from django.db import models
from django.dispatch import Signal
from django.utils.translation import gettext_lazy as _

from workflows.spec import WorkflowSpec, parse_spec
from workflows.texts import text_in

# Sent after changes that send no post_save: QuerySet.update() (admin bulk actions), bulk_create().
workflows_changed_in_bulk = Signal()


class WorkflowQuerySet(models.QuerySet):
    """Bulk changes announce themselves like single saves do, so that no process keeps serving
    a workflow version that was switched off (see services.get_active_workflow)."""

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        workflows_changed_in_bulk.send(sender=self.model)
        return rows

    def bulk_create(self, *args, **kwargs):
        created = super().bulk_create(*args, **kwargs)
        workflows_changed_in_bulk.send(sender=self.model)
        return created


class Workflow(models.Model):
    """One version of a standardized workflow: an API-format graph plus its spec (docs/workflow-spec.md).

    A new version is a new row; jobs keep the version they ran (Job.workflow is PROTECT).
    """

    slug = models.SlugField(_("slug"), max_length=100)
    name = models.CharField(_("name"), max_length=200, help_text=_("In English; users see their language."))
    # The spec's name by language ({} when it gives one string): job lists show it in the
    # reader's language without reading the spec.
    names = models.JSONField(default=dict, blank=True, editable=False, verbose_name=_("name by language"))
    version = models.CharField(_("version"), max_length=40)
    category = models.CharField(_("category"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    requires_mask = models.BooleanField(_("requires a mask"), default=False, editable=False)
    graph = models.JSONField(_("graph (API format)"))
    spec = models.JSONField(_("spec"))
    class_types = models.JSONField(
        _("node classes"), default=list, editable=False, help_text=_("Node classes the graph needs.")
    )
    warnings = models.JSONField(default=list, blank=True, editable=False, verbose_name=_("warnings"))
    # [[node id, class_type, input, value]]: the graph's values at combo inputs, where model files
    # are named (validation.combo_literals); None for versions stored before it was kept.
    combo_inputs = models.JSONField(null=True, blank=True, editable=False, verbose_name=_("list values"))
    # Shown on the workflow's catalogue card (before the spec's example_image and shared results);
    # served to signed-in users by workflows.views.example_picture, never as a public /media/ URL.
    example_picture = models.ImageField(
        _("example picture"),
        upload_to="examples/",
        max_length=300,
        blank=True,
        help_text=_("A PNG, JPEG, WebP or GIF picture for the catalogue card (at most 5 MB)."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    objects = WorkflowQuerySet.as_manager()

    class Meta:
        ordering = ["category", "name", "-created_at"]
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        constraints = [models.UniqueConstraint(fields=["slug", "version"], name="workflow_slug_version_unique")]
        indexes = [models.Index(fields=["slug", "is_active", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug} {self.version})"

    @property
    def parsed_spec(self) -> WorkflowSpec:
        """The spec as a model (workflows.spec.parse_spec), parsed once per spec document: a kept
        workflow's copies share it (services.get_active_workflow). Change the spec by assigning a
        new document, not in place. Raises pydantic.ValidationError for a spec that does not parse."""
        kept = self.__dict__.get("_parsed_spec")
        if kept is None or kept[0] is not self.spec:
            kept = (self.spec, parse_spec(self.spec))
            self.__dict__["_parsed_spec"] = kept
        return kept[1]

    def name_in(self, language: str | None) -> str:
        """The workflow's name in ``language`` (English when the spec has no such text)."""
        return text_in(self.names, language) if self.names else self.name
