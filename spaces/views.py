"""HTML pages of spaces: thin adapters over selectors and services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.private_media import private_file_response, private_media_view

from . import errors, selectors, services
from .forms import SpaceForm
from .live import tickets
from .models import Replay, Space, SpaceSubscription


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
            "replays": selectors.replays_visible(user=request.user, limit=12),
            "can_host": selectors.user_can_host(user=request.user),
        },
    )


@login_required
@require_GET
def hallway_fragment(request: HttpRequest):
    """The "Happening now" section alone, for open pages to swap in when the hallway changes
    (``hallway.changed`` on /ws/notifications/), as this member may see it."""
    return render(
        request,
        "spaces/_hallway.html",
        {
            "hallway": selectors.hallway(user=request.user),
            "can_host": selectors.user_can_host(user=request.user),
        },
    )


@login_required
def space_create(request: HttpRequest):
    if not selectors.user_can_host(user=request.user):
        messages.error(request, "Hosting spaces is not open to you yet.")
        return redirect("spaces:list")
    form = SpaceForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            space = services.space_create(host=request.user, **form.cleaned_data)
        except errors.SpaceError as error:
            form.add_error(None, error.message)
            status = error.http_status
        else:
            return redirect("spaces:detail", pk=space.pk)
    return render(request, "spaces/create.html", {"form": form}, status=status)


@login_required
def space_detail(request: HttpRequest, pk: int):
    space = _space_or_404(request, pk)
    subscribed = SpaceSubscription.objects.filter(space=space, user=request.user).exists()
    try:
        # The first socket joins with this (docs/protocol.md, "Join tickets"); reconnects ask
        # the API for a new one.
        join_ticket = tickets.ticket_issue(space=space, user=request.user)["ticket"]
    except errors.SpaceError:
        join_ticket = ""  # the socket then says why it cannot join
    pinnable = []
    if space.state == Space.State.LIVE:
        from voicetweets.selectors import pinnable_voicetweets

        # Host controls are shown to the host and co-hosts only (space.js decides from the room).
        pinnable = pinnable_voicetweets(authors=[space.host, request.user], viewer=request.user)
    return render(
        request,
        "spaces/detail.html",
        {
            "space": space,
            "is_host": space.host_id == request.user.pk,
            "is_subscribed": subscribed,
            "join_ticket": join_ticket,
            "space_data": selectors.space_data(space),
            "replay": selectors.replay_for_member(user=request.user, space_id=space.pk),
            "pinnable": pinnable,
            "share_url": request.build_absolute_uri(request.path),
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


# --- Replays ----------------------------------------------------------------------------------


def _replay_or_404(user, pk: int) -> Replay:
    """Non-members of a closed space get 404, as for the space itself: no hint it exists."""
    replay = selectors.replay_for_member(user=user, space_id=pk)
    if replay is None:
        raise Http404("No replay for this space")
    return replay


@login_required
@require_GET
def replay_detail(request: HttpRequest, pk: int):
    """The replay: player with seeking, waveform, who talked when, "next speaker"."""
    replay = _replay_or_404(request.user, pk)
    is_host = replay.space.host_id == request.user.pk
    return render(
        request,
        "spaces/replay.html",
        {
            "replay": replay,
            "space": replay.space,
            "timeline": selectors.replay_timeline(replay),
            "is_host": is_host,
            "can_delete": replay.state != Replay.State.RECORDING
            and (is_host or selectors.user_moderates_all_spaces(user=request.user)),
        },
    )


@private_media_view("spaces:replay_audio")
def replay_audio(request: HttpRequest, pk: int, *, listener) -> HttpResponse:
    """The replay file, with Range support so the player can seek."""
    replay = _replay_or_404(listener, pk)
    if replay.state != Replay.State.READY:
        raise Http404("This replay is not ready.")
    # Revalidated on every use: a deleted replay, or a member who lost access, must not play
    # on from a cache.
    return private_file_response(
        request, replay.audio_path, content_type="audio/ogg", cache_control="private, no-cache"
    )


@login_required
@require_POST
def replay_delete(request: HttpRequest, pk: int):
    replay = _replay_or_404(request.user, pk)
    try:
        services.replay_delete(replay=replay, by=request.user)
    except errors.SpaceError as error:
        messages.error(request, error.message)
        return redirect("spaces:replay", pk=pk)
    messages.success(request, "The replay was deleted.")
    return redirect("spaces:detail", pk=pk)
