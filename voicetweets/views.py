"""HTML pages, audio and captions URLs for voice tweets and voice messages: thin adapters over
selectors and services."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import user_get_active
from config.private_media import private_file_response, private_media_view
from config.throttling import throttled_post
from spaces.audio.transcribe import Segment, webvtt

from . import selectors, services
from .models import Recording

FEED_PAGE_SIZE = 20


def feed_page(*, viewer, before: str | None):
    """One page of the home feed for the HTML view; ``before`` is the last id already shown."""
    tweets = selectors.feed_for(viewer=viewer)
    if before and before.isdigit():
        tweets = tweets.filter(id__lt=int(before))
    page = list(tweets[: FEED_PAGE_SIZE + 1])
    next_before = page[FEED_PAGE_SIZE - 1].pk if len(page) > FEED_PAGE_SIZE else None
    return page[:FEED_PAGE_SIZE], next_before


def _audio_response(request: HttpRequest, recording: Recording) -> HttpResponse:
    """The canonical audio file, with Range support so players can seek."""
    if recording.state != Recording.State.READY or not recording.audio:
        raise Http404("No audio here.")
    return private_file_response(
        request,
        Path(recording.audio.path),
        content_type=recording.audio_content_type,
        cache_control="private, max-age=3600",
    )


def _captions_response(recording: Recording) -> HttpResponse:
    """The transcript as WebVTT, for a ``<track>`` beside the audio."""
    if (
        recording.state != Recording.State.READY
        or recording.transcript_state != Recording.TranscriptState.READY
    ):
        raise Http404("No captions here.")
    segments = [
        Segment(text=s["text"], start=s["start"], end=s["end"])
        for s in recording.transcript_segments
    ]
    response = HttpResponse(webvtt(segments), content_type="text/vtt; charset=utf-8")
    response["Cache-Control"] = "private, max-age=3600"
    return response


# Whoever may hear a recording may read its captions, and nobody else: the audio and captions
# views of each kind ask the one selector below.
def _voicetweet_for_listener(listener, pk: int):
    return selectors.voicetweet_for_viewer(viewer=listener, pk=pk)


def _voicemessage_for_listener(listener, pk: int):
    """For its two members, and for staff once it was reported."""
    return selectors.voicemessage_for_listener(viewer=listener, pk=pk)


@private_media_view("voicetweets:audio")
def audio(request: HttpRequest, pk: int, *, listener) -> HttpResponse:
    return _audio_response(request, _voicetweet_for_listener(listener, pk))


@private_media_view("voicetweets:captions")
def captions(request: HttpRequest, pk: int, *, listener) -> HttpResponse:
    return _captions_response(_voicetweet_for_listener(listener, pk))


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A voice tweet with its voice replies (the thread view)."""
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    replies = selectors.replies_to(voicetweet=tweet, viewer=request.user)
    return render(
        request,
        "voicetweets/detail.html",
        {"tweet": tweet, "replies": replies, "share_url": request.build_absolute_uri(request.path)},
    )


@login_required
@require_GET
def card(request: HttpRequest, pk: int) -> HttpResponse:
    """One feed item, for the page to swap in when processing ends. ``?next=`` is the page it
    goes into: its forms (like) come back there, not to this fragment."""
    tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)
    return_to = _safe_path(request.GET.get("next", ""))
    return render(request, "voicetweets/_card.html", {"tweet": tweet, "return_to": return_to})


@login_required
@require_POST
@throttled_post("voicetweet_create")
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
    return _safe_path(request.POST.get("next", "")) or "/"


def _safe_path(target: str) -> str:
    """``target`` if it is a path on this site, else "": never an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""


# --- Voice messages ---------------------------------------------------------------------------

MESSAGES_PAGE_SIZE = 50


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    conversations = selectors.inbox(viewer=request.user)
    return render(request, "voicetweets/inbox.html", {"conversations": conversations})


@login_required
@require_http_methods(["GET", "POST"])
@throttled_post("voicemessage_send")
def conversation(request: HttpRequest, username: str) -> HttpResponse:
    """The messages with one member, oldest first, and the recorder to answer. Opening it marks
    their messages read. POST is the recorder's form without JavaScript."""
    other = user_get_active(username=username)
    if other is None:
        raise Http404("No such member.")
    if request.method == "POST":
        upload = request.FILES.get("audio")
        if upload is None:
            messages.error(request, "Choose or record an audio file first.")
        else:
            try:
                services.voicemessage_send(sender=request.user, recipient=other, upload=upload)
            except services.VoiceTweetError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"Sent. {other.name} hears it once it is processed.")
        return redirect("voicetweets:conversation", username=other.username)
    services.voicemessages_mark_read(reader=request.user, other=other)
    thread = selectors.conversation_between(viewer=request.user, other=other)
    before = request.GET.get("before", "")
    if before.isdigit():
        thread = thread.filter(id__lt=int(before))
    page = list(thread[: MESSAGES_PAGE_SIZE + 1])
    older = page[MESSAGES_PAGE_SIZE - 1].pk if len(page) > MESSAGES_PAGE_SIZE else None
    try:
        services.voicemessage_check_send(sender=request.user, recipient=other)
        can_send, refusal = True, ""
    except services.VoiceTweetError as error:
        can_send, refusal = False, error.message
    context = {
        "other": other,
        "voice_messages": list(reversed(page[:MESSAGES_PAGE_SIZE])),
        "older": older,
        "can_send": can_send,
        "refusal": refusal,
    }
    return render(request, "voicetweets/conversation.html", context)


@private_media_view("voicetweets:message_audio")
def message_audio(request: HttpRequest, pk: int, *, listener) -> HttpResponse:
    return _audio_response(request, _voicemessage_for_listener(listener, pk))


@private_media_view("voicetweets:message_captions")
def message_captions(request: HttpRequest, pk: int, *, listener) -> HttpResponse:
    """As private as the message: exactly who may hear it."""
    return _captions_response(_voicemessage_for_listener(listener, pk))


@login_required
@require_GET
def message_card(request: HttpRequest, pk: int) -> HttpResponse:
    """One message, for the conversation page to swap in when processing ends."""
    message = selectors.voicemessage_for_viewer(viewer=request.user, pk=pk)
    return render(request, "voicetweets/_message.html", {"message": message})
