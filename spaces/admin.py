"""Admin for spaces. Actions go through services, so they reach live sockets at once and are
audited there (space.end, space.remove_participant, space.ban)."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from . import errors, services
from .models import (
    Participant,
    Replay,
    Space,
    SpaceBan,
    SpaceInvite,
    SpaceSubscription,
)


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    can_delete = False  # removal goes through the "remove participant" action (closes sockets)
    fields = ("user", "role", "hand_raised", "is_muted", "connection_count", "last_seen")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = (
        "title", "host", "state", "visibility", "audio_mode", "scheduled_start", "started_at",
    )  # fmt: skip
    list_filter = ("state", "visibility", "audio_mode")
    search_fields = ("title", "host__username")
    raw_id_fields = ("host",)
    # audio_mode only through services.space_set_audio_mode: it must reach the room's mixer.
    readonly_fields = (
        "state", "audio_mode", "started_at", "ended_at", "host_absent_since", "created_at",
    )  # fmt: skip
    inlines = [ParticipantInline]
    actions = ["end_now"]

    @admin.action(description="End space now (closes every socket)")
    def end_now(self, request, queryset):
        ended = 0
        for space in queryset.filter(state=Space.State.LIVE):
            try:
                services.space_end(space=space, by=request.user, reason="ended_by_admin")
            except errors.SpaceError as error:
                self.message_user(request, f"{space}: {error.message}", messages.ERROR)
            else:
                ended += 1
        self.message_user(request, f"Ended {ended} space(s).")


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("user", "space", "role", "is_muted", "hand_raised", "connection_count")
    list_filter = ("role", "space__state")
    search_fields = ("user__username", "space__title")
    readonly_fields = [f.name for f in Participant._meta.fields]
    actions = ["remove_participant", "remove_and_ban"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _remove(self, request, queryset, *, ban: bool):
        for participant in queryset.select_related("space"):
            try:
                services.participant_remove(
                    space=participant.space, by=request.user, user_id=participant.user_id, ban=ban
                )
            except errors.SpaceError as error:
                self.message_user(request, f"{participant}: {error.message}", messages.ERROR)
        self.message_user(request, "Done.")

    @admin.action(description="Remove participant (closes their sockets)")
    def remove_participant(self, request, queryset):
        self._remove(request, queryset, ban=False)

    @admin.action(description="Remove and ban from the space")
    def remove_and_ban(self, request, queryset):
        self._remove(request, queryset, ban=True)


@admin.register(SpaceBan)
class SpaceBanAdmin(admin.ModelAdmin):
    list_display = ("user", "space", "banned_by", "created_at")
    raw_id_fields = ("user", "space", "banned_by")


class HoldReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 60}))


@admin.register(Replay)
class ReplayAdmin(admin.ModelAdmin):
    """Replays with what retention needs to show: size, duration, retention date and hold.

    Holding, releasing and deleting go through services (audited, files removed at once).
    """

    list_display = (
        "space", "state", "duration", "size", "retention_date", "held", "hold_reason", "created_at"
    )  # fmt: skip
    list_filter = ("state", "held")
    list_select_related = ("space",)
    search_fields = ("space__title", "space__host__username")
    readonly_fields = (
        "space", "state", "duration", "size", "player", "delete_after", "held", "hold_reason",
        "failure_reason", "created_at", "processed_at", "processing_attempts", "directory",
    )  # fmt: skip
    exclude = (
        "waveform", "timeline", "duration_ms", "size_bytes", "lease_token", "lease_expires_at",
    )  # fmt: skip
    actions = ["hold", "release", "delete_now"]

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, replay: Replay) -> str:
        if replay.duration_ms is None:
            return "–"
        minutes, seconds = divmod(round(replay.duration_ms / 1000), 60)
        return f"{minutes}:{seconds:02d}"

    @admin.display(description="retention date", ordering="delete_after")
    def retention_date(self, replay: Replay):
        """When retention deletes it (not while held); empty while the space is recorded."""
        return replay.delete_after

    @admin.display(description="size", ordering="size_bytes")
    def size(self, replay: Replay) -> str:
        return "–" if replay.size_bytes is None else filesizeformat(replay.size_bytes)

    @admin.display(description="audio")
    def player(self, replay: Replay) -> str:
        if replay.state != Replay.State.READY:
            return "–"
        src = reverse("spaces:replay_audio", args=[replay.space_id])
        return format_html('<audio controls preload="none" src="{}"></audio>', src)

    def has_add_permission(self, request) -> bool:
        return False  # replays come from recorded spaces

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # "delete now" removes the files too, through the service

    def _each(self, request, queryset, service, done: str, **kwargs) -> None:
        count = 0
        for replay in queryset:
            try:
                service(replay=replay, by=request.user, **kwargs)
            except errors.SpaceError as error:
                self.message_user(request, f"{replay}: {error.message}", messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"{done}: {count} replay(s).", messages.SUCCESS)

    @admin.action(description="Hold for review (retention skips it; reason required)")
    def hold(self, request, queryset):
        form = HoldReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._each(
                request, queryset, services.replay_hold, "Held", reason=form.cleaned_data["reason"]
            )
            return None
        return render(
            request,
            "admin/spaces/replay_hold.html",
            {
                **self.admin_site.each_context(request),
                "title": "Hold replays for review",
                "form": form,
                "queryset": queryset,
                "action": "hold",
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Release hold (retention applies again)")
    def release(self, request, queryset):
        self._each(request, queryset, services.replay_release, "Released")

    @admin.action(description="Delete now (removes the audio file)")
    def delete_now(self, request, queryset):
        self._each(request, queryset, services.replay_delete, "Deleted")


admin.site.register(SpaceInvite)
admin.site.register(SpaceSubscription)
