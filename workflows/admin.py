from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.files.uploadedfile import UploadedFile
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from nodes.models import ComfyNode
from workflows import services
from workflows.models import Workflow
from workflows.pictures import check_example_picture


class WorkflowUploadForm(forms.ModelForm):
    """A workflow (UI or API format) and its spec, validated by the same code as the API; each
    error is shown in the form. "Draft a spec" converts the workflow, proposes a spec and shows
    it here for editing; the workflow is kept in the page so that Save needs no second upload."""

    workflow_file = forms.FileField(
        label=_("workflow.json (UI or API format)"),
        required=False,
        help_text=_("The file ComfyUI's Save writes, its Export (API), or a PNG image made by ComfyUI."),
    )
    spec_file = forms.FileField(
        label=_("spec.json"), required=False, help_text=_("Leave empty and press 'Draft a spec' to get a proposal.")
    )
    spec_text = forms.CharField(
        label=_("spec"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 24, "class": "vLargeTextField workflow-spec-editor"}),
        help_text=_("The spec as JSON: edit the proposal here, then press Save. A spec.json file takes precedence."),
    )
    node = forms.ModelChoiceField(
        label=_("node classes from"),
        queryset=ComfyNode.objects.filter(is_active=True).order_by("name"),
        to_field_name="name",
        required=False,
        empty_label=_("stock ComfyUI (the recorded catalogue)"),
        help_text=_("Convert with this GPU server's own catalogue, to import a workflow that uses its custom nodes."),
    )
    workflow_json = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Workflow
        fields = ()

    def clean(self):
        cleaned = super().clean()
        workflow_file = cleaned.get("workflow_file")
        if workflow_file is not None:
            try:  # a PNG saved by ComfyUI: the workflow inside it
                workflow_bytes = services.unwrap_workflow(workflow_file.read())
            except DomainError as exc:
                raise forms.ValidationError(exc.detail) from exc
        else:
            workflow_bytes = (cleaned.get("workflow_json") or "").encode("utf-8")
        if not workflow_bytes.strip():
            raise forms.ValidationError(_("Choose a workflow file (UI or API format)."))
        if "_draft" in self.data:
            try:
                self.draft = services.draft_for_upload(
                    workflow_bytes, getattr(workflow_file, "name", None), node=self._node_name(cleaned)
                )
            except DomainError as exc:
                raise forms.ValidationError(_("Cannot draft a spec: %(error)s") % {"error": exc.detail}) from exc
            data = self.data.copy()
            data["spec_text"] = json.dumps(self.draft["spec"], indent=2, ensure_ascii=False)
            data["workflow_json"] = workflow_bytes.decode("utf-8", "replace")
            self.data = data
            self.draft_graph = json.dumps(self.draft["graph"], indent=2, ensure_ascii=False)
            raise forms.ValidationError(_("Here is a proposed spec: edit it below, then press Save."))
        spec_file = cleaned.get("spec_file")
        spec_bytes = spec_file.read() if spec_file is not None else (cleaned.get("spec_text") or "").encode("utf-8")
        if not spec_bytes.strip():
            raise forms.ValidationError(_("Upload a spec.json too (or press 'Draft a spec')."))
        try:
            self.created = services.upload_workflow(
                workflow_raw=workflow_bytes,
                spec_raw=spec_bytes,
                user=getattr(self, "user", None),
                node=self._node_name(cleaned),
            )
        except DomainError as exc:
            lines = list((exc.errors or {}).values()) or [exc.detail]
            if workflow_file is not None:  # keep the workflow in the page for the next try
                data = self.data.copy()
                data["workflow_json"] = workflow_bytes.decode("utf-8", "replace")
                self.data = data
            raise forms.ValidationError([forms.ValidationError(line) for line in lines]) from exc
        return cleaned

    @staticmethod
    def _node_name(cleaned: dict) -> str | None:
        node = cleaned.get("node")
        return node.name if node is not None else None


class WorkflowChangeForm(forms.ModelForm):
    """An existing version: its texts, whether it is active, and its example picture."""

    class Meta:
        model = Workflow
        fields = ("name", "category", "description", "is_active", "example_picture")

    def clean_example_picture(self):
        picture = self.cleaned_data.get("example_picture")
        if isinstance(picture, UploadedFile):  # a new upload (else the stored one, or none)
            check_example_picture(picture)
        return picture


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "version", "category", "is_active", "requires_mask", "created_at")
    list_filter = ("is_active", "category", "requires_mask")
    search_fields = ("name", "slug", "description")
    actions = ["activate", "deactivate"]
    readonly_fields = (
        "slug",
        "version",
        "requires_mask",
        "class_types",
        "warnings",
        "graph_view",
        "spec_view",
        "created_by",
        "created_at",
    )
    form = WorkflowChangeForm
    fields = (
        "name",
        "category",
        "description",
        "is_active",
        "example_picture",
        "slug",
        "version",
        "requires_mask",
        "class_types",
        "warnings",
        "spec_view",
        "graph_view",
        "created_by",
        "created_at",
    )
    change_form_template = "admin/workflows/workflow/change_form.html"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            form = WorkflowUploadForm
            form.user = request.user
            return form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("workflow_file", "node", "spec_file", "spec_text", "workflow_json") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        # New uploads were saved by the form's clean() through services.upload_workflow.

    def save_form(self, request, form, change):
        if not change:
            return form.created  # validated and stored by the upload form
        return super().save_form(request, form, change)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        try:
            services.delete_workflow(workflow=obj)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)

    @admin.display(description=_("graph"))
    def graph_view(self, obj):
        return format_html('<pre class="admin-json">{}</pre>', json.dumps(obj.graph, indent=2))

    @admin.display(description=_("spec"))
    def spec_view(self, obj):
        return format_html('<pre class="admin-json">{}</pre>', json.dumps(obj.spec, indent=2, ensure_ascii=False))

    @admin.action(description=_("Activate selected workflows"))
    def activate(self, request, queryset):
        queryset.update(is_active=True)

    @admin.action(description=_("Deactivate selected workflows"))
    def deactivate(self, request, queryset):
        queryset.update(is_active=False)
