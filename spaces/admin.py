"""Admin for spaces. Actions go through services, so they reach live sockets at once and are
audited there (space.end, space.remove_participant, space.ban)."""

from django.contrib import admin, messages

from . import errors, services
from .models import Notification, Participant, Space, SpaceBan, SpaceInvite, SpaceSubscription


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
    list_display = ("title", "host", "state", "visibility", "scheduled_start", "started_at")
    list_filter = ("state", "visibility")
    search_fields = ("title", "host__username")
    raw_id_fields = ("host",)
    readonly_fields = ("state", "started_at", "ended_at", "host_absent_since", "created_at")
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


admin.site.register(SpaceInvite)
admin.site.register(SpaceSubscription)
admin.site.register(Notification)
