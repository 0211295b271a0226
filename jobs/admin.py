from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from jobs import services
from jobs.models import Job, JobFile


class JobFileInline(admin.TabularInline):
    model = JobFile
    extra = 0
    fields = ("preview", "kind", "content_type", "width", "height", "size", "created_at")
    readonly_fields = fields
    can_delete = False

    @admin.display(description=_("preview"))
    def preview(self, record):
        return format_html(
            '<a href="/api/files/{}" target="_blank"><img src="/api/files/{}?variant=thumb" '
            'alt="" class="admin-thumb"></a>',
            record.pk,
            record.pk,
        )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "workflow",
        "user",
        "status",
        "progress_pct",
        "node",
        "attempts",
        "created_at",
        "finished_at",
        "outputs",
    )
    list_filter = ("status", "workflow__slug", "node", "user")
    search_fields = ("id", "user__username", "workflow__slug", "error")
    readonly_fields = (
        "id",
        "user",
        "workflow",
        "node",
        "status",
        "inputs",
        "model_files",
        "prompt_id",
        "client_id",
        "progress",
        "progress_text",
        "error",
        "attempts",
        "runner_id",
        "heartbeat_at",
        "created_at",
        "started_at",
        "submitted_at",
        "finished_at",
        "cancel_requested",
    )
    fields = readonly_fields + ("priority",)
    inlines = [JobFileInline]
    actions = ["cancel", "retry"]
    list_select_related = ("workflow", "user", "node")

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("progress"))
    def progress_pct(self, job):
        return f"{job.progress * 100:.0f}%"

    @admin.display(description=_("outputs"))
    def outputs(self, job):
        results = [f for f in job.files.all() if f.kind == JobFile.Kind.RESULT][:4]
        return format_html_join(
            "",
            '<img src="/api/files/{}?variant=thumb" alt="" class="admin-thumb admin-thumb--small">',
            ((f.pk,) for f in results),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("files")

    @admin.action(description=_("Cancel selected jobs"))
    def cancel(self, request, queryset):
        for job in queryset.filter(status__in=Job.ACTIVE):
            services.cancel_job(job=job)
        self.message_user(request, _("Cancel requested."), messages.SUCCESS)

    @admin.action(description=_("Retry selected jobs (same inputs, same user)"))
    def retry(self, request, queryset):
        for job in queryset:
            try:
                services.retry_job(user=job.user, job=job)
            except DomainError as exc:
                self.message_user(request, f"{job.pk}: {exc.detail}", messages.ERROR)
