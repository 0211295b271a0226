from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import SiteSettings, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = (
        "username",
        "email",
        "role",
        "is_blocked",
        "blocked_reason",
        "priority",
        "max_concurrent_jobs",
        "max_queued_jobs",
        "daily_job_limit",
        "last_login",
    )
    list_filter = ("role", "is_blocked", "is_active")
    search_fields = ("username", "email")
    ordering = ("username",)
    actions = ["block_users", "unblock_users"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Profile"), {"fields": ("email", "first_name", "last_name", "role", "is_active")}),
        (_("Blocking"), {"fields": ("is_blocked", "blocked_reason")}),
        (_("Limits"), {"fields": ("priority", "max_concurrent_jobs", "max_queued_jobs", "daily_job_limit")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "password1", "password2", "role")}),)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.is_blocked:
            services.on_user_blocked(obj)

    @admin.action(description=_("Block selected users"))
    def block_users(self, request, queryset):
        reason = request.POST.get("reason") or str(_("Blocked by an administrator."))
        count = 0
        for user in queryset.exclude(pk=request.user.pk):
            services.block_user(user=user, reason=reason)
            count += 1
        self.message_user(request, _("%(count)d user(s) blocked.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Unblock selected users"))
    def unblock_users(self, request, queryset):
        for user in queryset:
            services.unblock_user(user=user)
        self.message_user(request, _("%(count)d user(s) unblocked.") % {"count": queryset.count()}, messages.SUCCESS)


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "max_concurrent_jobs", "max_queued_jobs", "daily_job_limit", "updated_at")

    def has_add_permission(self, request):
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
