"""The bell's page: thin adapters over notifications' selectors and services."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services


@login_required
@require_GET
def notification_list(request: HttpRequest):
    """The newest notifications with their links, and "mark all read"."""
    return render(
        request,
        "notifications/list.html",
        {"notifications": selectors.notifications_for(user=request.user)},
    )


@login_required
@require_POST
def notifications_read_all(request: HttpRequest):
    services.notifications_mark_all_read(user=request.user)
    return redirect("notifications:list")
