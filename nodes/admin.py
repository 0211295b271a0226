from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from nodes import health, services
from nodes.comfy.client import auth_header_problem
from nodes.models import ComfyNode
from nodes.urls_validation import normalize_base_url


def _gib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**30:.1f}"


class ComfyNodeForm(forms.ModelForm):
    # Write-only: the stored value is never rendered back into the page.
    auth_header = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label=_("auth header"),
        help_text=_("Leave empty to keep the current value. Enter '-' to remove it."),
    )

    class Meta:
        model = ComfyNode
        fields = ("name", "base_url", "is_active", "max_queue", "priority", "auth_header")

    def clean_base_url(self):
        try:
            return normalize_base_url(self.cleaned_data["base_url"])
        except ValueError as exc:
            raise forms.ValidationError(_("Base URL %(problem)s.") % {"problem": exc}) from exc

    def clean_auth_header(self):
        value = self.cleaned_data.get("auth_header", "")
        if value == "-":
            return ""
        problem = auth_header_problem(value)
        if problem:
            raise forms.ValidationError(_("The auth header %(problem)s.") % {"problem": problem})
        return value or (self.instance.auth_header if self.instance.pk else "")


@admin.register(ComfyNode)
class ComfyNodeAdmin(admin.ModelAdmin):
    form = ComfyNodeForm
    list_display = (
        "name",
        "status_badge",
        "is_active",
        "base_url",
        "queue",
        "vram",
        "model_files",
        "last_seen_at",
        "short_error",
    )
    list_filter = ("status", "is_active")
    search_fields = ("name", "base_url")
    actions = ["enable", "disable", "check_now", "refresh_models"]
    readonly_fields = (
        "status",
        "last_seen_at",
        "last_checked_at",
        "last_error",
        "consecutive_failures",
        "queue_remaining",
        "foreign_queue",
        "system_stats",
        "class_types_refreshed_at",
        "inventory_read_at",
        "inventory_stale",
        "inventory_error",
        "held_models",
        "model_list",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).filter(remove_when_drained=False)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, node):
        # Colours in static/css/admin.css: the Content-Security-Policy allows no style attributes.
        return format_html(
            '<b class="node-status node-status--{}">● {}</b>', node.status.lower(), node.get_status_display()
        )

    @admin.display(description=_("queue"))
    def queue(self, node):
        queue = node.live_queue
        return f"{'—' if queue is None else queue} / {node.max_queue}"

    @admin.display(description=_("VRAM free / total (GiB)"))
    def vram(self, node):
        free, total = node.vram
        return f"{_gib(free)} / {_gib(total)}"

    @admin.display(description=_("model files"))
    def model_files(self, node):
        count = node.model_count
        return f"{count} ({_('stale')})" if node.inventory_stale else str(count)

    @admin.display(description=_("model files by folder"))
    def model_list(self, node):
        held = set(node.held_model_keys)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (folder, name, _("loaded") if f"{folder}/{name}" in held else "")
                for folder, names in sorted((node.inventory or {}).items())
                for name in names
            ),
        )
        return format_html('<table class="node-models">{}</table>', rows) if rows else "—"

    @admin.display(description=_("last error"))
    def short_error(self, node):
        return (node.last_error[:80] + "…") if len(node.last_error) > 80 else node.last_error

    def delete_model(self, request, obj):
        self.message_user(request, services.delete_node(node=obj))

    def delete_queryset(self, request, queryset):
        for node in queryset:
            self.message_user(request, services.delete_node(node=node))

    @admin.action(description=_("Enable selected GPU servers"))
    def enable(self, request, queryset):
        updated = queryset.update(is_active=True)
        self.message_user(request, _("%(count)d GPU server(s) enabled.") % {"count": updated}, messages.SUCCESS)

    @admin.action(description=_("Disable selected GPU servers (running jobs finish)"))
    def disable(self, request, queryset):
        updated = queryset.update(is_active=False)
        self.message_user(
            request, _("%(count)d GPU server(s) disabled; running jobs will finish.") % {"count": updated}
        )

    @admin.action(description=_("Check selected GPU servers now"))
    def check_now(self, request, queryset):
        for node in queryset:
            fresh = health.check_node(node.pk)
            if fresh is not None:
                level = messages.SUCCESS if fresh.status == ComfyNode.Status.ONLINE else messages.WARNING
                self.message_user(request, f"{fresh.name}: {fresh.get_status_display()} {fresh.last_error}", level)

    @admin.action(description=_("Refresh node classes and model files now"))
    def refresh_models(self, request, queryset):
        for node in queryset:
            fresh = health.refresh_node(node.pk)
            if fresh is None:
                continue
            if fresh.status != ComfyNode.Status.ONLINE or fresh.inventory_stale:
                problem = fresh.last_error or fresh.inventory_error
                self.message_user(request, f"{fresh.name}: {problem}", messages.WARNING)
            else:
                self.message_user(
                    request,
                    _("%(node)s: %(count)d model files read.") % {"node": fresh.name, "count": fresh.model_count},
                    messages.SUCCESS,
                )
