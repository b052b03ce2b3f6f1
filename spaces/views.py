"""HTML pages of spaces: thin adapters over selectors and services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import errors, selectors, services
from .forms import SpaceForm
from .models import Space, SpaceSubscription


def _space_or_404(request: HttpRequest, pk: int) -> Space:
    space = selectors.space_for_member(user=request.user, pk=pk)
    if space is None:
        raise Http404("No such space")
    return space


@login_required
def space_list(request: HttpRequest):
    """The hallway and the scheduled spaces with "remind me"."""
    return render(
        request,
        "spaces/list.html",
        {
            "hallway": selectors.hallway(user=request.user),
            "scheduled": selectors.scheduled_spaces(user=request.user),
            "can_host": selectors.user_can_host(user=request.user),
        },
    )


@login_required
def space_create(request: HttpRequest):
    if not selectors.user_can_host(user=request.user):
        messages.error(request, "Hosting spaces is not open to you yet.")
        return redirect("spaces:list")
    form = SpaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            space = services.space_create(host=request.user, **form.cleaned_data)
        except errors.SpaceError as error:
            form.add_error(None, error.message)
        else:
            return redirect("spaces:detail", pk=space.pk)
    return render(request, "spaces/create.html", {"form": form})


@login_required
def space_detail(request: HttpRequest, pk: int):
    space = _space_or_404(request, pk)
    subscribed = SpaceSubscription.objects.filter(space=space, user=request.user).exists()
    return render(
        request,
        "spaces/detail.html",
        {
            "space": space,
            "is_host": space.host_id == request.user.pk,
            "is_subscribed": subscribed,
            "space_data": selectors.space_data(space),
        },
    )


def _act(request: HttpRequest, pk: int, action, success: str):
    space = _space_or_404(request, pk)
    try:
        action(space)
    except errors.SpaceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    if request.POST.get("next") == "list":
        return redirect("spaces:list")
    return redirect("spaces:detail", pk=pk)


@login_required
@require_POST
def space_remind(request: HttpRequest, pk: int):
    if request.POST.get("remind") == "off":
        return _act(
            request,
            pk,
            lambda s: services.space_unsubscribe(space=s, user=request.user),
            "You will not be reminded.",
        )
    return _act(
        request,
        pk,
        lambda s: services.space_subscribe(space=s, user=request.user),
        "We will remind you 30 minutes before, and when it starts.",
    )


@login_required
@require_POST
def space_start(request: HttpRequest, pk: int):
    return _act(
        request, pk, lambda s: services.space_start(space=s, by=request.user), "You are live."
    )


@login_required
@require_POST
def space_cancel(request: HttpRequest, pk: int):
    return _act(
        request,
        pk,
        lambda s: services.space_cancel(space=s, by=request.user),
        "The space was cancelled.",
    )
