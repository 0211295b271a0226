"""The webhooks page: endpoints (secret shown once), the jobs' signing secret, recent deliveries."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from accounts.views import user_menu
from core.errors import DomainError
from webhooks import delivery
from webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint

RECENT_DELIVERIES = 50


@login_required
def webhooks_page(request: HttpRequest) -> HttpResponse:
    shown_secret, errors, form = "", {}, {"url": "", "description": "", "events": []}
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "create":
                form = {
                    "url": request.POST.get("url", "").strip(),
                    "description": request.POST.get("description", "")[:200],
                    "events": request.POST.getlist("events"),
                }
                endpoint = delivery.create_endpoint(user=request.user, **form)
                shown_secret = endpoint.secret
                form = {"url": "", "description": "", "events": []}
            elif action == "delete":
                delivery.delete_endpoint(delivery.get_endpoint(request.user, int(request.POST.get("endpoint", 0))))
                messages.success(request, _("The endpoint was deleted."))
                return redirect("webhooks")
            elif action == "rotate":
                shown_secret = delivery.rotate_signing_secret(request.user)
            elif action == "redeliver":
                row = delivery.redeliver(user=request.user, delivery_id=int(request.POST.get("delivery", 0)))
                async_task("webhooks.tasks.deliver", row.pk)
                messages.success(request, _("The delivery will be sent again."))
                return redirect("webhooks")
        except ValueError:
            errors = {"form": _("Not found.")}
        except DomainError as exc:
            errors = exc.errors or {"form": exc.detail}
    context = {
        **user_menu(request),
        "endpoints": WebhookEndpoint.objects.filter(user=request.user),
        "deliveries": WebhookDelivery.objects.filter(user=request.user).order_by("-created_at")[:RECENT_DELIVERIES],
        "shown_secret": shown_secret,
        "errors": errors,
        "form_error": errors.get("form", ""),
        "form": form,
        "events": EVENTS,
    }
    return render(request, "webhooks/webhooks.html", context, status=400 if errors else 200)
