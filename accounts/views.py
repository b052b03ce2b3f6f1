"""HTML pages of the accounts app: thin adapters over services and selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from config.throttling import throttled_post
from spaces.selectors import replays_visible
from voicetweets.selectors import voicetweets_by
from voicetweets.services import voicemessage_may_send

from . import errors, selectors, services
from .adapter import INVITATION_SESSION_KEY, invitation_invalid_response
from .forms import InvitationForm, ProfileForm, ReportForm, WaitlistForm
from .models import Follow, Invitation, Report, User


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Landing page of an invitation link: who invited you, then on into allauth's signup."""
    try:
        invitation = services.invitation_check(token=token)
    except errors.InvalidInvitation as exc:
        return invitation_invalid_response(request, exc)
    if request.user.is_authenticated:
        messages.info(request, "You are already a member; pass the link on to someone else.")
        return redirect("home")
    if request.method == "POST":
        request.session[INVITATION_SESSION_KEY] = invitation.token
        url = reverse("account_signup")
        if invitation.email:
            from urllib.parse import urlencode

            url += "?" + urlencode({"email": invitation.email})
        return redirect(url)
    return render(request, "accounts/invitation.html", {"invitation": invitation})


@require_http_methods(["GET", "POST"])
@throttled_post("waitlist_join")
def waitlist(request: HttpRequest) -> HttpResponse:
    form = WaitlistForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.waitlist_join(**form.cleaned_data)
        except errors.AccountsError as exc:
            form.add_error(None, exc.message)
        else:
            return render(request, "accounts/waitlist_done.html")
    return render(
        request, "accounts/waitlist.html", {"form": form}, status=400 if form.errors else 200
    )


def _member_or_404(request: HttpRequest, username: str) -> User:
    member = selectors.user_get_active(username=username)
    if member is None or not selectors.profile_visible_to(owner=member, viewer=request.user):
        raise Http404("No such member.")
    return member


PROFILE_TWEETS = 20
PROFILE_REPLAYS = 6


@login_required
def profile(request: HttpRequest, username: str) -> HttpResponse:
    member = _member_or_404(request, username)
    context = {
        "member": member,
        "counts": selectors.profile_counts(user=member),
        "is_me": member.pk == request.user.pk,
        "is_following": selectors.is_following(follower=request.user, followee=member),
        "follows_you": selectors.is_following(follower=member, followee=request.user),
        "has_blocked": selectors.has_blocked(blocker=request.user, blocked=member),
        # Empty across a block, in either direction (the voicetweets selector decides).
        "voice_tweets": voicetweets_by(author=member, viewer=request.user)[:PROFILE_TWEETS],
        "can_message": voicemessage_may_send(sender=request.user, recipient=member),
        # Ready replays of the member's spaces that the viewer may see (the spaces' visibility).
        "replays": replays_visible(user=request.user, host=member, limit=PROFILE_REPLAYS),
    }
    return render(request, "accounts/profile.html", context)


def _follow_list(request: HttpRequest, username: str, *, followers: bool) -> HttpResponse:
    member = _member_or_404(request, username)
    if followers:
        rows = Follow.objects.filter(followee=member, follower__is_active=True)
        rows = rows.select_related("follower").order_by("-created_at", "-id")
    else:
        rows = Follow.objects.filter(follower=member, followee__is_active=True)
        rows = rows.select_related("followee").order_by("-created_at", "-id")
    page = Paginator(rows, 30).get_page(request.GET.get("page"))
    people = [row.follower if followers else row.followee for row in page]
    return render(
        request,
        "accounts/follow_list.html",
        {"member": member, "page": page, "people": people, "followers": followers},
    )


@login_required
def followers(request: HttpRequest, username: str) -> HttpResponse:
    return _follow_list(request, username, followers=True)


@login_required
def following(request: HttpRequest, username: str) -> HttpResponse:
    return _follow_list(request, username, followers=False)


@login_required
@require_POST
def relation(request: HttpRequest, username: str, action: str) -> HttpResponse:
    """Follow, unfollow, block or unblock, from the buttons on a profile."""
    member = selectors.user_get_active(username=username)
    if member is None:
        raise Http404("No such member.")
    try:
        if action == "follow":
            if not selectors.profile_visible_to(owner=member, viewer=request.user):
                raise Http404("No such member.")
            services.follow_create(follower=request.user, followee=member)
        elif action == "unfollow":
            services.follow_delete(follower=request.user, followee=member)
        elif action == "block":
            services.block_create(blocker=request.user, blocked=member)
            messages.success(request, f"You blocked {member.username}.")
        elif action == "unblock":
            services.block_delete(blocker=request.user, blocked=member)
            messages.success(request, f"You unblocked {member.username}.")
        else:
            raise Http404
    except errors.AccountsError as exc:
        messages.error(request, exc.message)
    if request.POST.get("next") == "welcome":
        return redirect("accounts:welcome")
    return redirect("accounts:profile", username=member.username)


@login_required
def welcome(request: HttpRequest) -> HttpResponse:
    """Where a new member lands after signing up: whom to follow first."""
    return render(
        request,
        "accounts/welcome.html",
        {"suggestions": selectors.follow_suggestions(user=request.user)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest) -> HttpResponse:
    user = request.user
    initial = {
        "display_name": user.display_name,
        "bio": user.bio,
        "messages_from_anyone": user.messages_from_anyone,
    }
    form = ProfileForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                services.user_update_profile(
                    user=user,
                    display_name=data["display_name"],
                    bio=data["bio"],
                    messages_from_anyone=data["messages_from_anyone"],
                )
                if data.get("avatar"):
                    services.user_set_avatar(user=user, upload=data["avatar"])
                elif data.get("remove_avatar"):
                    services.user_remove_avatar(user=user)
        except errors.AccountsError as exc:
            user.refresh_from_db()
            form.add_error("avatar" if isinstance(exc, errors.InvalidAvatar) else None, exc.message)
        else:
            messages.success(request, "Profile saved.")
            return redirect("accounts:profile", username=user.username)
    return render(
        request, "accounts/profile_edit.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
@throttled_post("invitation_create")
def invitations(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_create(inviter=request.user, email=form.cleaned_data["email"])
        except errors.AccountsError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Invitation created: copy the link and send it.")
        return redirect("accounts:invitations")
    request.user.refresh_from_db(fields=["invitations_left"])
    rows = selectors.invitations_of(user=request.user)
    base = request.build_absolute_uri("/")
    items = [(inv, services.invitation_url(invitation=inv, base_url=base)) for inv in rows]
    return render(request, "accounts/invitations.html", {"form": form, "items": items})


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk, inviter=request.user)
    try:
        services.invitation_revoke(invitation=invitation, by=request.user)
    except errors.AccountsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Invitation revoked; you can send it to someone else.")
    return redirect("accounts:invitations")


def _reported_page(kind: str, obj, viewer: User) -> str:
    """Where the member goes back to after reporting ``obj``."""
    if kind == Report.Kind.VOICETWEET:
        return reverse("voicetweets:detail", args=[obj.pk])
    if kind == Report.Kind.VOICEMESSAGE:
        return reverse("voicetweets:conversation", args=[obj.sender.username])
    if kind == Report.Kind.SPACE:
        return reverse("spaces:detail", args=[obj.pk])
    return reverse("accounts:profile", args=[obj.username])


@login_required
@require_http_methods(["GET", "POST"])
@throttled_post("report_create")
def report(request: HttpRequest, kind: str, target: str) -> HttpResponse:
    """The report form for a voice tweet, a voice message, a space or a member."""
    try:
        obj, owner = services.report_check_target(
            reporter=request.user, target_kind=kind, target=target
        )
    except errors.NotFound:
        raise Http404("Nothing to report there.") from None
    except errors.AccountsError as exc:
        messages.error(request, exc.message)
        return redirect("home")
    back = _reported_page(kind, obj, request.user)
    already = selectors.has_reported(reporter=request.user, kind=kind, target_id=obj.pk)
    form = ReportForm(request.POST or None)
    if request.method == "POST" and not already and form.is_valid():
        try:
            services.report_create(
                reporter=request.user, target_kind=kind, target=target, **form.cleaned_data
            )
        except errors.AccountsError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Thank you. The moderators will look at it.")
            return redirect(back)
    context = {
        "kind": kind, "target": obj, "owner": owner, "form": form, "already": already,
        "back": back,
    }  # fmt: skip
    return render(request, "accounts/report.html", context, status=400 if form.errors else 200)
