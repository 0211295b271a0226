from __future__ import annotations

from django import forms
from django.contrib import admin

from billing import ledger
from billing.models import BillingSettings, LedgerEntry, WorkflowPrice
from core.errors import DomainError


@admin.register(BillingSettings)
class BillingSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "enabled", "currency", "updated_at")

    def has_add_permission(self, request):
        return not BillingSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WorkflowPrice)
class WorkflowPriceAdmin(admin.ModelAdmin):
    list_display = ("workflow_slug", "per_job", "per_gpu_second", "max_gpu_seconds")
    search_fields = ("workflow_slug",)


class EntryForm(forms.ModelForm):
    """Admins add top-ups and adjustments (with a reason); the other kinds come from jobs."""

    kind = forms.ChoiceField(
        choices=[
            (LedgerEntry.Kind.TOPUP.value, LedgerEntry.Kind.TOPUP.label),
            (LedgerEntry.Kind.ADJUST.value, LedgerEntry.Kind.ADJUST.label),
        ]
    )

    class Meta:
        model = LedgerEntry
        fields = ("user", "kind", "amount", "reason")

    def clean(self):
        cleaned = super().clean()
        user, amount, kind = cleaned.get("user"), cleaned.get("amount"), cleaned.get("kind")
        if user is None or amount is None or kind is None or self.errors:
            return cleaned
        try:  # validated by the ledger's own rules, then written in save_model
            if kind == LedgerEntry.Kind.TOPUP:
                self.entry = ledger.top_up(user=user, amount=amount, reason=cleaned.get("reason", ""), actor=self.actor)
            else:
                self.entry = ledger.adjust(user=user, amount=amount, reason=cleaned.get("reason", ""), actor=self.actor)
        except DomainError as exc:
            field = next(iter(exc.errors or {}), None)
            self.add_error(field if field in self.fields else None, exc.detail)
        return cleaned


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """The ledger is append-only: entries are added (top-ups, adjustments), never changed."""

    list_display = ("created_at", "user", "kind", "amount", "job", "reason", "created_by")
    list_filter = ("kind",)
    search_fields = ("user__username", "reason")
    form = EntryForm

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def save_model(self, request, obj, form, change):
        obj.pk = form.entry.pk  # written by the form's clean, through the ledger

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in LedgerEntry._meta.fields] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False
