from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.admins import ADMIN_STATE, ensure_admins_remain, ensure_change_keeps_an_admin
from accounts.models import ApiKey, SiteSettings, User
from core.errors import DomainError


class AdminUserChangeForm(UserChangeForm):
    def clean(self):
        cleaned = super().clean()
        changes = {name: cleaned[name] for name in ADMIN_STATE if name in cleaned}
        try:  # the row locks last until the admin's change view commits
            ensure_change_keeps_an_admin(self.instance, changes)
        except DomainError as exc:
            field = next(iter(exc.errors or {}), None)
            self.add_error(field if field in self.fields else None, exc.detail)
        return cleaned


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
        "storage_quota_mb",
        "storage_used",
        "last_login",
    )
    list_filter = ("role", "is_blocked", "is_active")
    search_fields = ("username", "email")
    ordering = ("username",)
    actions = ["delete_selected", "block_users", "unblock_users"]
    form = AdminUserChangeForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Profile"), {"fields": ("email", "first_name", "last_name", "role", "is_active")}),
        (_("Blocking"), {"fields": ("is_blocked", "blocked_reason")}),
        (
            _("Limits"),
            {"fields": ("priority", "max_concurrent_jobs", "max_queued_jobs", "daily_job_limit", "storage_quota_mb")},
        ),
        (_("Storage"), {"fields": ("storage_used",)}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("storage_used",)
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "password1", "password2", "role")}),)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.is_blocked:
            services.on_user_blocked(obj)

    def delete_view(self, request, object_id, extra_context=None):
        with transaction.atomic():
            user = self.get_object(request, unquote(object_id))
            try:
                ensure_admins_remain([user.pk] if user else [], field="user")
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
            return super().delete_view(request, object_id, extra_context)

    @admin.action(description=admin_actions.delete_selected.short_description, permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's delete action, refused when it would delete every active admin."""
        with transaction.atomic():
            try:
                ensure_admins_remain(queryset.values_list("pk", flat=True), field="user")
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return None
            return admin_actions.delete_selected(self, request, queryset)

    @admin.action(description=_("Block selected users"))
    def block_users(self, request, queryset):
        reason = request.POST.get("reason") or str(_("Blocked by an administrator."))
        count = 0
        for user in queryset.exclude(pk=request.user.pk):
            try:
                services.block_user(user=user, reason=reason)
            except DomainError as exc:
                self.message_user(request, f"{user.username}: {exc.detail}", messages.ERROR)
                continue
            count += 1
        self.message_user(request, _("%(count)d user(s) blocked.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Unblock selected users"))
    def unblock_users(self, request, queryset):
        for user in queryset:
            services.unblock_user(user=user)
        self.message_user(request, _("%(count)d user(s) unblocked.") % {"count": queryset.count()}, messages.SUCCESS)


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "max_concurrent_jobs",
        "max_queued_jobs",
        "daily_job_limit",
        "storage_quota_mb",
        "updated_at",
    )

    def has_add_permission(self, request):
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created by their users (shown once); admins see them and may revoke them."""

    list_display = ("name", "prefix", "user", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("hashed_key",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, _("%(count)d keys revoked.") % {"count": count})
