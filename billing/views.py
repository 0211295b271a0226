"""The credits page: the balance, what running jobs hold, and the ledger."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.views import user_menu
from billing import ledger


@login_required
def credits_page(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/credits.html", {**user_menu(request), "credits": ledger.summary(request.user)})
