"""REST API for spaces, under /api/v1/spaces/: thin adapters over selectors and services.

Every live action here is also a websocket command; both call the same service, so the rules
(and the events every client sees) are the same whichever way a client acts.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from config.private_media import media_link

from . import errors, selectors, services
from .live import tickets
from .models import Replay, Space
from .protocol import REACTIONS


class SpaceAPIError(APIException):
    """A domain error as a 4xx with a stable ``code`` and a human ``detail``."""

    def __init__(self, error: errors.SpaceError):
        self.status_code = error.http_status
        super().__init__(detail={"code": error.code, "detail": error.message})


class JoinTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="seconds the ticket is valid for")
    role = serializers.CharField()


class HostSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class SpaceSerializer(serializers.Serializer):
    """Read shape, built by selectors.space_data (the same dict snapshots carry)."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=Space.State.choices)
    visibility = serializers.ChoiceField(choices=Space.Visibility.choices)
    host = HostSerializer()
    cohost_ids = serializers.ListField(child=serializers.IntegerField())
    speaker_ids = serializers.ListField(child=serializers.IntegerField())
    participant_count = serializers.IntegerField()
    listener_count = serializers.IntegerField()
    scheduled_start = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    is_recording = serializers.BooleanField()
    audio_mode = serializers.ChoiceField(
        choices=Space.AudioMode.choices,
        help_text=(
            "speech; music: fullband at a higher bitrate, no browser voice processing; "
            "music_stereo: music in two channels."
        ),
    )
    pinned_voice_tweet_id = serializers.IntegerField(allow_null=True)
    host_away = serializers.BooleanField(
        help_text="The host's last connection closed: a co-host may take over (host-take-over)."
    )


class SpaceCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=120)
    visibility = serializers.ChoiceField(choices=Space.Visibility.choices, default="open")
    scheduled_start = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Omit to go live now; at most 14 days ahead."
    )
    is_recording = serializers.BooleanField(
        default=False, help_text="Record the space from the start (the host may switch it)."
    )
    audio_mode = serializers.ChoiceField(
        choices=Space.AudioMode.choices,
        default=Space.AudioMode.SPEECH,
        help_text="The host may switch it until the space ends.",
    )


class ParticipantSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    hand_raised = serializers.BooleanField()
    is_muted = serializers.BooleanField()
    muted_by_moderator = serializers.BooleanField()
    invited_to_speak = serializers.BooleanField()
    joined_at = serializers.DateTimeField()
    avatar_url = serializers.CharField(allow_null=True, help_text="null: no avatar (initials)")


class UsernameSerializer(serializers.Serializer):
    username = serializers.CharField()


class RemoveSerializer(serializers.Serializer):
    ban = serializers.BooleanField(default=False)


class MutedSerializer(serializers.Serializer):
    muted = serializers.BooleanField()


class PinSerializer(serializers.Serializer):
    voice_tweet_id = serializers.IntegerField(allow_null=True)


class RecordingSerializer(serializers.Serializer):
    is_recording = serializers.BooleanField()


class AudioModeSerializer(serializers.Serializer):
    audio_mode = serializers.ChoiceField(choices=Space.AudioMode.choices)


class ReactionSerializer(serializers.Serializer):
    emoji = serializers.ChoiceField(choices=list(REACTIONS))


class ReplayTurnSerializer(serializers.Serializer):
    """One speaker's turn, in seconds of the replay; built by selectors.replay_timeline."""

    speaker_id = serializers.IntegerField()
    username = serializers.CharField(allow_null=True, help_text="Null for a deleted account.")
    name = serializers.CharField()
    start = serializers.FloatField()
    end = serializers.FloatField()


class ReplaySerializer(serializers.Serializer):
    space_id = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=Replay.State.choices,
        help_text="recording (the space is live) → processing (after its end) → ready | failed",
    )
    duration = serializers.FloatField(allow_null=True, help_text="Seconds; null until ready.")
    waveform = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=100),
        help_text="Peak level (0..100) of equal slices of the replay.",
    )
    timeline = ReplayTurnSerializer(many=True, help_text="Who talked when, ordered by start.")
    audio_url = serializers.URLField(
        allow_null=True,
        help_text="Ogg Opus with Range support (seekable); null until ready. Plays for the member "
        "it was returned to, without a session, for an hour (SALON_MEDIA_LINK_MAX_AGE_SECONDS).",
    )
    delete_after = serializers.DateTimeField(
        allow_null=True,
        help_text="When retention deletes the replay (unless a moderator holds it).",
    )


NO_CONTENT = {204: None}
USER_ID = OpenApiParameter("user_id", int, OpenApiParameter.PATH)


def _done() -> Response:
    return Response(status=status.HTTP_204_NO_CONTENT)


class SpaceViewSet(viewsets.ViewSet):
    """Spaces: lifecycle, reminders, invitations, the stage and moderation."""

    # For the router's lookup pattern and the schema's path parameter type only.
    queryset = Space.objects.none()
    lookup_value_regex = r"\d+"

    def handle_exception(self, exc):
        if isinstance(exc, errors.SpaceError):
            exc = SpaceAPIError(exc)
        return super().handle_exception(exc)

    def _space(self, pk) -> Space:
        space = selectors.space_for_member(user=self.request.user, pk=int(pk))
        if space is None:
            raise Http404
        return space

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _out(self, space: Space, code=status.HTTP_200_OK) -> Response:
        space = Space.objects.select_related("host").get(pk=space.pk)
        return Response(SpaceSerializer(selectors.space_data(space)).data, status=code)

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["live", "scheduled"], required=False),
        ],
        responses=SpaceSerializer(many=True),
    )
    def list(self, request):
        """Live and scheduled spaces the member may see (``?state=`` narrows it)."""
        state = request.query_params.get("state")
        states = (state,) if state in ("live", "scheduled") else ("live", "scheduled")
        data = selectors.spaces_visible_data(user=request.user, states=states)
        return Response(SpaceSerializer(data, many=True).data)

    @extend_schema(request=SpaceCreateSerializer, responses={201: SpaceSerializer})
    def create(self, request):
        """Start a space now, or schedule it (needs the hosting permission). 409 when you
        already host SALON_SPACE_MAX_OPEN_PER_HOST (3 by default) live or scheduled spaces."""
        data = self._input(SpaceCreateSerializer)
        space = services.space_create(
            host=request.user,
            title=data["title"],
            visibility=data["visibility"],
            scheduled_start=data.get("scheduled_start"),
            is_recording=data["is_recording"],
            audio_mode=data["audio_mode"],
        )
        return self._out(space, status.HTTP_201_CREATED)

    @extend_schema(responses=SpaceSerializer)
    def retrieve(self, request, pk=None):
        return self._out(self._space(pk))

    @extend_schema(responses=ParticipantSerializer(many=True))
    @action(detail=True, methods=["get"])
    def participants(self, request, pk=None):
        space = self._space(pk)
        participants = space.participants.select_related("user")
        data = [selectors.participant_data(p) for p in participants]
        return Response(ParticipantSerializer(data, many=True).data)

    # --- lifecycle ---

    @extend_schema(request=None, responses=SpaceSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._out(services.space_start(space=self._space(pk), by=request.user))

    @extend_schema(request=None, responses=SpaceSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._out(services.space_cancel(space=self._space(pk), by=request.user))

    @extend_schema(request=None, responses=SpaceSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        return self._out(services.space_end(space=self._space(pk), by=request.user))

    @extend_schema(request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["post", "delete"])
    def subscription(self, request, pk=None):
        """ "Remind me" (POST) or not (DELETE)."""
        space = self._space(pk)
        if request.method == "DELETE":
            services.space_unsubscribe(space=space, user=request.user)
        else:
            services.space_subscribe(space=space, user=request.user)
        return _done()

    @extend_schema(request=UsernameSerializer, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def invites(self, request, pk=None):
        """Host or co-host invites a member by username."""
        data = self._input(UsernameSerializer)
        services.space_invite(space=self._space(pk), by=request.user, username=data["username"])
        return _done()

    @extend_schema(request=PinSerializer, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def pin(self, request, pk=None):
        data = self._input(PinSerializer)
        services.space_pin_tweet(
            space=self._space(pk), by=request.user, voice_tweet_id=data["voice_tweet_id"]
        )
        return _done()

    @extend_schema(request=RecordingSerializer, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def recording(self, request, pk=None):
        data = self._input(RecordingSerializer)
        services.space_set_recording(
            space=self._space(pk), by=request.user, is_recording=data["is_recording"]
        )
        return _done()

    @extend_schema(request=AudioModeSerializer, responses=SpaceSerializer)
    @action(detail=True, methods=["post"], url_path="audio-mode")
    def audio_mode(self, request, pk=None):
        """The host switches between speech, music and music_stereo audio (scheduled or live
        spaces)."""
        data = self._input(AudioModeSerializer)
        space = self._space(pk)
        services.space_set_audio_mode(space=space, by=request.user, audio_mode=data["audio_mode"])
        return self._out(space)

    @extend_schema(request=None, responses={200: JoinTicketSerializer})
    @action(detail=True, methods=["post"])
    def ticket(self, request, pk=None):
        """A join ticket for ``/ws/spaces/{id}/?ticket=`` (docs/protocol.md, "Join tickets"):
        the socket then joins without a database query. Ask for one at each (re)connect."""
        issued = tickets.ticket_issue(space=self._space(pk), user=request.user)
        return Response(JoinTicketSerializer(issued).data)

    # --- the member's own stage actions (they must be in the space) ---

    @extend_schema(request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["post", "delete"])
    def hand(self, request, pk=None):
        """Raise (POST) or lower (DELETE) your hand."""
        service = services.hand_lower if request.method == "DELETE" else services.hand_raise
        service(space=self._space(pk), user=request.user)
        return _done()

    @extend_schema(request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["post"], url_path="speak-invite/accept")
    def speak_accept(self, request, pk=None):
        services.speak_invite_accept(space=self._space(pk), user=request.user)
        return _done()

    @extend_schema(request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["post"], url_path="speak-invite/decline")
    def speak_decline(self, request, pk=None):
        services.speak_invite_decline(space=self._space(pk), user=request.user)
        return _done()

    @extend_schema(request=MutedSerializer, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def mute(self, request, pk=None):
        """Mute or unmute yourself (on stage only)."""
        data = self._input(MutedSerializer)
        services.participant_set_muted(
            space=self._space(pk), user=request.user, muted=data["muted"]
        )
        return _done()

    @extend_schema(request=ReactionSerializer, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def reactions(self, request, pk=None):
        data = self._input(ReactionSerializer)
        services.reaction_send(space=self._space(pk), user=request.user, emoji=data["emoji"])
        return _done()

    @extend_schema(request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def leave(self, request, pk=None):
        services.participant_leave(space=self._space(pk), user=request.user)
        return _done()

    @extend_schema(request=None, responses=SpaceSerializer)
    @action(detail=True, methods=["post"], url_path="host-take-over")
    def host_take_over(self, request, pk=None):
        """A co-host becomes the host while the host is away (409 while the host is here)."""
        space = self._space(pk)
        services.space_host_take_over(space=space, by=request.user)
        return self._out(space)

    @extend_schema(request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["post"], url_path="mute-all")
    def mute_all(self, request, pk=None):
        services.speakers_mute_all(space=self._space(pk), by=request.user)
        return _done()

    # --- moderation of one participant ---

    def _moderate(self, service, pk, user_id, **kwargs) -> Response:
        service(space=self._space(pk), by=self.request.user, user_id=int(user_id), **kwargs)
        return _done()

    @extend_schema(request=None, responses=NO_CONTENT, parameters=[USER_ID])
    @action(detail=True, methods=["post"], url_path=r"participants/(?P<user_id>\d+)/approve")
    def approve(self, request, pk=None, user_id=None):
        """Bring a listener with a raised hand up to speak."""
        return self._moderate(services.hand_approve, pk, user_id)

    @extend_schema(request=None, responses=NO_CONTENT, parameters=[USER_ID])
    @action(detail=True, methods=["post"], url_path=r"participants/(?P<user_id>\d+)/dismiss")
    def dismiss(self, request, pk=None, user_id=None):
        return self._moderate(services.hand_dismiss, pk, user_id)

    @extend_schema(request=None, responses=NO_CONTENT, parameters=[USER_ID])
    @action(
        detail=True, methods=["post"], url_path=r"participants/(?P<user_id>\d+)/invite-to-speak"
    )
    def invite_to_speak(self, request, pk=None, user_id=None):
        return self._moderate(services.speak_invite, pk, user_id)

    @extend_schema(request=None, responses=NO_CONTENT, parameters=[USER_ID])
    @action(detail=True, methods=["post"], url_path=r"participants/(?P<user_id>\d+)/mute")
    def mute_participant(self, request, pk=None, user_id=None):
        return self._moderate(services.speaker_mute, pk, user_id)

    @extend_schema(request=None, responses=NO_CONTENT, parameters=[USER_ID])
    @action(
        detail=True, methods=["post"], url_path=r"participants/(?P<user_id>\d+)/move-to-listeners"
    )
    def move_to_listeners(self, request, pk=None, user_id=None):
        return self._moderate(services.speaker_move_to_listeners, pk, user_id)

    @extend_schema(request=RemoveSerializer, responses=NO_CONTENT, parameters=[USER_ID])
    @action(detail=True, methods=["post"], url_path=r"participants/(?P<user_id>\d+)/remove")
    def remove(self, request, pk=None, user_id=None):
        """Remove a participant; ``ban`` keeps them out of this space."""
        data = self._input(RemoveSerializer)
        return self._moderate(services.participant_remove, pk, user_id, ban=data["ban"])

    @extend_schema(request=None, responses=NO_CONTENT, parameters=[USER_ID])
    @action(detail=True, methods=["post", "delete"], url_path=r"cohosts/(?P<user_id>\d+)")
    def cohost(self, request, pk=None, user_id=None):
        """Host only: make a participant co-host (POST) or take it back (DELETE)."""
        service = services.cohost_remove if request.method == "DELETE" else services.cohost_add
        return self._moderate(service, pk, user_id)

    # --- the replay ---

    @extend_schema(methods=["GET"], request=None, responses=ReplaySerializer)
    @extend_schema(methods=["DELETE"], request=None, responses=NO_CONTENT)
    @action(detail=True, methods=["get", "delete"])
    def replay(self, request, pk=None):
        """The space's replay (GET, same visibility as the space), or delete it now (DELETE,
        host; the file goes at once)."""
        replay = selectors.replay_for_member(user=request.user, space_id=int(pk))
        if replay is None:
            raise Http404
        if request.method == "DELETE":
            services.replay_delete(replay=replay, by=request.user)
            return _done()
        data = selectors.replay_data(replay)
        data["audio_url"] = None
        if replay.state == Replay.State.READY:
            data["audio_url"] = media_link(
                request, url_name="spaces:replay_audio", pk=replay.space_id, member=request.user
            )
        return Response(ReplaySerializer(data).data)
