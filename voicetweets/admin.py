from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import Report
from accounts.selectors import report_count

from . import services, transcription
from .models import VoiceMessage, VoiceTweet


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 60}))


class CaptionsNote:
    """The recordings' lists say so when captions are off on this installation, and why: an
    operator otherwise only sees every transcript_state read "off"."""

    def changelist_view(self, request, extra_context=None):
        reason = transcription.captions_unavailable()
        if reason is not None:
            self.message_user(
                request, f"Captions are off: transcripts are not made. {reason}", messages.WARNING
            )
        return super().changelist_view(request, extra_context)


@admin.register(VoiceTweet)
class VoiceTweetAdmin(CaptionsNote, admin.ModelAdmin):
    list_display = (
        "id", "author", "state", "duration", "like_count", "reports", "is_hidden",
        "transcript_state", "created_at",
    )  # fmt: skip
    list_filter = ("state", "is_hidden", "transcript_state", "created_at")
    search_fields = ("author__username", "text")
    raw_id_fields = ("author", "parent")
    readonly_fields = (
        "author", "parent", "state", "rejection_reason", "duration_ms", "player", "waveform",
        "like_count", "is_hidden", "hidden_reason", "processing_attempts", "created_at",
        "processed_at", "transcript_state", "transcript_language", "transcript",
    )  # fmt: skip
    exclude = ("audio", "upload", "transcript_segments")
    actions = ["hide", "unhide"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                report_count=report_count(kind=Report.Kind.VOICETWEET),
                open_report_count=report_count(kind=Report.Kind.VOICETWEET, open_only=True),
            )
        )

    @admin.display(description="reports", ordering="report_count")
    def reports(self, tweet: VoiceTweet) -> str:
        if not tweet.report_count:
            return "0"
        query = urlencode({"target_kind": Report.Kind.VOICETWEET, "target_id": tweet.pk})
        url = reverse("admin:accounts_report_changelist") + "?" + query
        return format_html(
            '<a href="{}">{}</a> ({} open)', url, tweet.report_count, tweet.open_report_count
        )

    @admin.display(description="duration")
    def duration(self, tweet: VoiceTweet) -> str:
        return "–" if tweet.duration_ms is None else f"{tweet.duration_ms / 1000:.1f} s"

    @admin.display(description="audio")
    def player(self, tweet: VoiceTweet) -> str:
        if tweet.state != VoiceTweet.State.READY:
            return "–"
        src = reverse("voicetweets:audio", args=[tweet.pk])
        return format_html('<audio controls preload="none" src="{}"></audio>', src)

    def has_add_permission(self, request) -> bool:
        return False  # voice tweets are posted by members, through processing

    def _with_reason(self, request, queryset, action: str, title: str):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            service = services.voicetweet_hide if action == "hide" else services.voicetweet_unhide
            done = 0
            for tweet in queryset:
                try:
                    service(voicetweet=tweet, by=request.user, reason=form.cleaned_data["reason"])
                    done += 1
                except services.VoiceTweetError as error:
                    self.message_user(request, f"{tweet}: {error.message}", messages.ERROR)
            if done:
                self.message_user(request, f"{title}: {done} voice tweet(s).", messages.SUCCESS)
            return None
        return render(
            request,
            "admin/voicetweets/reason.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "queryset": queryset,
                "action": action,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Hide selected voice tweets (reason required)")
    def hide(self, request, queryset):
        return self._with_reason(request, queryset, "hide", "Hide voice tweets")

    @admin.action(description="Unhide selected voice tweets")
    def unhide(self, request, queryset):
        return self._with_reason(request, queryset, "unhide", "Unhide voice tweets")


@admin.register(VoiceMessage)
class VoiceMessageAdmin(CaptionsNote, admin.ModelAdmin):
    """Metadata only. Messages are private: the audio (and its waveform and transcript) is out
    of the admin, except for a message someone reported, which staff may then hear."""

    list_display = (
        "id", "sender", "recipient", "state", "duration", "reports", "transcript_state",
        "created_at", "read_at",
    )  # fmt: skip
    list_filter = ("state", "transcript_state", "created_at")
    search_fields = ("sender__username", "recipient__username")
    list_select_related = ("sender", "recipient")
    fields = (
        "sender", "recipient", "state", "rejection_reason", "duration", "created_at",
        "processed_at", "read_at", "reports", "player", "transcript_state",
    )  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(report_count=report_count(kind=Report.Kind.VOICEMESSAGE))
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the files would stay behind; and it is the members' conversation

    @admin.display(description="duration")
    def duration(self, message: VoiceMessage) -> str:
        return "–" if message.duration_ms is None else f"{message.duration_ms / 1000:.1f} s"

    @admin.display(description="reports", ordering="report_count")
    def reports(self, message: VoiceMessage) -> str:
        if not message.report_count:
            return "0"
        query = urlencode({"target_kind": Report.Kind.VOICEMESSAGE, "target_id": message.pk})
        url = reverse("admin:accounts_report_changelist") + "?" + query
        return format_html('<a href="{}">{}</a>', url, message.report_count)

    @admin.display(description="audio")
    def player(self, message: VoiceMessage) -> str:
        if message.state != VoiceMessage.State.READY:
            return "–"
        if not message.report_count:
            return "Private: staff can listen only once the message is reported."
        src = reverse("voicetweets:message_audio", args=[message.pk])
        return format_html('<audio controls preload="none" src="{}"></audio>', src)
