"""HTML pages and the audio URL for voice tweets: thin adapters over selectors and services."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.http import ranged_file_response

from . import selectors, services
from .models import VoiceTweet

FEED_PAGE_SIZE = 20


def feed_page(*, viewer, before: str | None):
    """One page of the home feed for the HTML view; ``before`` is the last id already shown."""
    tweets = selectors.feed_for(viewer=viewer)
    if before and before.isdigit():
        tweets = tweets.filter(id__lt=int(before))
    page = list(tweets[: FEED_PAGE_SIZE + 1])
    next_before = page[FEED_PAGE_SIZE - 1].pk if len(page) > FEED_PAGE_SIZE else None
    return page[:FEED_PAGE_SIZE], next_before


@login_required
@require_GET
def audio(request: HttpRequest, pk: int) -> HttpResponse:
    """The canonical audio file, with Range support so players can seek."""
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    if tweet.state != VoiceTweet.State.READY or not tweet.audio:
        raise Http404("No audio for this voice tweet.")
    response = ranged_file_response(request, Path(tweet.audio.path), tweet.audio_content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A voice tweet with its voice replies (the thread view)."""
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    replies = selectors.replies_to(voicetweet=tweet, viewer=request.user)
    return render(request, "voicetweets/detail.html", {"tweet": tweet, "replies": replies})


@login_required
@require_GET
def card(request: HttpRequest, pk: int) -> HttpResponse:
    """One feed item, for the page to swap in when processing ends."""
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    return render(request, "voicetweets/_card.html", {"tweet": tweet})


@login_required
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """The compose form without JavaScript: post, then back to where the member was."""
    parent = None
    if request.POST.get("parent_id", "").isdigit():
        parent = selectors.voicetweet_for_viewer(
            viewer=request.user, pk=int(request.POST["parent_id"])
        )
    upload = request.FILES.get("audio")
    if upload is None:
        messages.error(request, "Choose or record an audio file first.")
        return redirect(_back(request))
    try:
        services.voicetweet_create(
            author=request.user,
            upload=upload,
            text=request.POST.get("text", ""),
            parent=parent,
            post_as_thread=request.POST.get("post_as_thread") == "on",
        )
    except services.VoiceTweetError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Posted. Your voice tweet appears once it is processed.")
    return redirect(_back(request))


@login_required
@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    try:
        services.voicetweet_delete(voicetweet=tweet, by=request.user)
    except services.VoiceTweetError as error:
        messages.error(request, error.message)
        return redirect("voicetweets:detail", pk=pk)
    messages.success(request, "Voice tweet deleted.")
    return redirect("home")


@login_required
@require_POST
def like(request: HttpRequest, pk: int) -> HttpResponse:
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    if tweet.liked_by_me:
        services.voicetweet_unlike(user=request.user, voicetweet=tweet)
    else:
        services.voicetweet_like(user=request.user, voicetweet=tweet)
    return redirect(_back(request))


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    # Only paths on this site: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"
