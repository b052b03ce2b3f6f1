"""REST API for voice tweets: thin adapters over selectors and services."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import is_blocked_between, user_get_active
from config.private_media import media_link
from config.throttling import ScopedRateThrottle

from . import selectors, services
from .models import Recording, VoiceMessage, VoiceTweet


class VoiceTweetAPIError(APIException):
    """A domain error as a 4xx with a stable ``code`` and a human ``detail``."""

    def __init__(self, error: services.VoiceTweetError):
        self.status_code = error.status
        super().__init__(detail={"code": error.code, "detail": error.message})


class AuthorSerializer(serializers.Serializer):
    username = serializers.CharField()
    display_name = serializers.CharField(source="name")


class TranscriptFields(serializers.Serializer):
    """What both kinds of recording say about their transcript (voicetweets.transcription)."""

    transcript = serializers.CharField(
        read_only=True, help_text="What was said, as text; empty until transcript_state is ready."
    )
    transcript_language = serializers.CharField(
        read_only=True, help_text="The language heard (ISO 639-1); empty until ready."
    )
    transcript_state = serializers.ChoiceField(
        choices=Recording.TranscriptState.choices,
        read_only=True,
        help_text="pending (queued), ready, failed (the audio still plays), or off (captions "
        "are off on this server).",
    )
    captions_url = serializers.SerializerMethodField(
        help_text="The transcript as WebVTT, with the same access as audio_url (and a link "
        "like it); null until transcript_state is ready."
    )

    captions_url_name = ""

    def get_captions_url(self, recording: Recording) -> str | None:
        if (
            recording.state != Recording.State.READY
            or recording.transcript_state != Recording.TranscriptState.READY
        ):
            return None
        request = self.context["request"]
        return media_link(
            request, url_name=self.captions_url_name, pk=recording.pk, member=request.user
        )


TRANSCRIPT_FIELDS = ["transcript", "transcript_language", "transcript_state", "captions_url"]


class VoiceTweetSerializer(TranscriptFields, serializers.ModelSerializer):
    author = AuthorSerializer(read_only=True)
    parent_id = serializers.IntegerField(read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    audio_url = serializers.SerializerMethodField()
    liked_by_me = serializers.BooleanField(read_only=True, default=False)

    class Meta:
        model = VoiceTweet
        fields = [
            "id", "author", "text", "parent_id", "state", "rejection_reason", "duration_seconds",
            "waveform", "audio_url", "like_count", "liked_by_me", "is_hidden", "created_at",
            *TRANSCRIPT_FIELDS,
        ]  # fmt: skip
        extra_kwargs = {
            "is_hidden": {"help_text": "Hidden by a moderator: only its author and admins see it."}
        }
        read_only_fields = fields

    captions_url_name = "voicetweets:captions"

    def get_audio_url(self, tweet: VoiceTweet) -> str | None:
        """An audio link (config.private_media): plays for this member, token or session, with
        Range, for SALON_MEDIA_LINK_MAX_AGE_SECONDS."""
        if tweet.state != VoiceTweet.State.READY:
            return None
        request = self.context["request"]
        return media_link(request, url_name="voicetweets:audio", pk=tweet.pk, member=request.user)


class VoiceTweetCreateSerializer(serializers.Serializer):
    audio = serializers.FileField(help_text="webm/ogg/opus, m4a/mp4/aac, mp3, wav or flac.")
    text = serializers.CharField(max_length=280, required=False, allow_blank=True, default="")
    parent_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    post_as_thread = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Split a recording over 140 s (up to 15 minutes) into a thread instead of "
        "rejecting it. The whole request is capped at SALON_VOICETWEET_MAX_UPLOAD_BYTES (28 MiB by "
        "default, 413 beyond): a long thread needs a compressed file (MP3/AAC up to 256 kbit/s, "
        "Opus).",
    )


class FeedPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20


class ThreadPagination(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 50


def _call(service, **kwargs):
    try:
        return service(**kwargs)
    except services.VoiceTweetError as error:
        raise VoiceTweetAPIError(error) from error


class VoiceTweetCreateView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    # Each upload is minutes of transcoding: the same budget as voice messages.
    throttle_classes = [*APIView.throttle_classes, ScopedRateThrottle]
    throttle_scope = "voicetweet_create"

    @extend_schema(
        request=VoiceTweetCreateSerializer,
        responses={
            202: VoiceTweetSerializer,
            400: OpenApiResponse(description="Refused upload"),
            429: OpenApiResponse(description="Rate limited"),
        },
        summary="Post a voice tweet",
        description="Returns at once with the tweet in state `processing`; poll it or listen "
        "on /ws/notifications/ for `voicetweet.ready` / `voicetweet.rejected`.",
    )
    def post(self, request):
        data = VoiceTweetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = None
        if data.validated_data["parent_id"] is not None:
            parent = _visible_or_404(request, data.validated_data["parent_id"])
        tweet = _call(
            services.voicetweet_create,
            author=request.user,
            upload=data.validated_data["audio"],
            text=data.validated_data["text"],
            parent=parent,
            post_as_thread=data.validated_data["post_as_thread"],
        )
        tweet = selectors.voicetweet_for_viewer(viewer=request.user, pk=tweet.pk)
        return Response(
            VoiceTweetSerializer(tweet, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


def _visible_or_404(request, pk: int) -> VoiceTweet:
    return selectors.voicetweet_for_viewer(viewer=request.user, pk=pk)


class VoiceTweetDetailView(APIView):
    @extend_schema(responses=VoiceTweetSerializer, summary="A voice tweet, with its state")
    def get(self, request, pk: int):
        tweet = _visible_or_404(request, pk)
        return Response(VoiceTweetSerializer(tweet, context={"request": request}).data)

    @extend_schema(responses={204: None}, summary="Delete your voice tweet and its audio")
    def delete(self, request, pk: int):
        tweet = _visible_or_404(request, pk)
        _call(services.voicetweet_delete, voicetweet=tweet, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


_like_response = inline_serializer(
    "LikeState", {"liked": serializers.BooleanField(), "like_count": serializers.IntegerField()}
)


class VoiceTweetLikeView(APIView):
    def _state(self, request, pk: int) -> Response:
        tweet = _visible_or_404(request, pk)
        return Response({"liked": tweet.liked_by_me, "like_count": tweet.like_count})

    @extend_schema(request=None, responses=_like_response, summary="Like (idempotent)")
    def post(self, request, pk: int):
        _call(services.voicetweet_like, user=request.user, voicetweet=_visible_or_404(request, pk))
        return self._state(request, pk)

    @extend_schema(responses=_like_response, summary="Unlike (idempotent)")
    def delete(self, request, pk: int):
        tweet = _visible_or_404(request, pk)
        _call(services.voicetweet_unlike, user=request.user, voicetweet=tweet)
        return self._state(request, pk)


class FeedView(ListAPIView):
    """Voice tweets by you and the people you follow, newest first (cursor-paginated)."""

    serializer_class = VoiceTweetSerializer
    pagination_class = FeedPagination

    def get_queryset(self):
        return selectors.feed_for(viewer=self.request.user)


class RepliesView(ListAPIView):
    """Voice replies and thread continuations of a voice tweet, oldest first."""

    serializer_class = VoiceTweetSerializer
    pagination_class = ThreadPagination

    def get_queryset(self):
        tweet = _visible_or_404(self.request, self.kwargs["pk"])
        return selectors.replies_to(voicetweet=tweet, viewer=self.request.user)


class UserVoiceTweetsView(ListAPIView):
    """A member's voice tweets, newest first; empty across a block."""

    serializer_class = VoiceTweetSerializer
    pagination_class = FeedPagination

    def get_queryset(self):
        author = get_object_or_404(get_user_model(), username=self.kwargs["username"])
        if is_blocked_between(user=self.request.user, other=author):
            return VoiceTweet.objects.none()
        return selectors.voicetweets_by(author=author, viewer=self.request.user)


# --- Voice messages ---------------------------------------------------------------------------


class VoiceMessageSerializer(TranscriptFields, serializers.ModelSerializer):
    sender = AuthorSerializer(read_only=True)
    recipient = AuthorSerializer(read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = VoiceMessage
        fields = [
            "id", "sender", "recipient", "state", "rejection_reason", "duration_seconds",
            "waveform", "audio_url", "created_at", "read_at", *TRANSCRIPT_FIELDS,
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "state": {"help_text": "The recipient only ever sees ready messages."},
            "read_at": {"help_text": "When the recipient marked it read; null while unread."},
        }

    captions_url_name = "voicetweets:message_captions"

    def get_audio_url(self, message: VoiceMessage) -> str | None:
        if message.state != VoiceMessage.State.READY:
            return None
        request = self.context["request"]
        return media_link(
            request, url_name="voicetweets:message_audio", pk=message.pk, member=request.user
        )


class VoiceMessageCreateSerializer(serializers.Serializer):
    audio = serializers.FileField(
        help_text="At most 140 s of webm/ogg/opus, m4a/mp4/aac, mp3, wav or flac."
    )


class ConversationSerializer(serializers.Serializer):
    member = AuthorSerializer(source="other")
    last_message_at = serializers.DateTimeField(source="last_at")
    unread_count = serializers.IntegerField(source="unread")


class MessagePagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50


def _member_or_404(username: str):
    member = user_get_active(username=username)
    if member is None:
        from django.http import Http404

        raise Http404("No such member.")
    return member


class ConversationListView(APIView):
    @extend_schema(
        operation_id="conversations_list",
        responses=ConversationSerializer(many=True),
        summary="Your voice message conversations",
        description="One entry per member you exchanged voice messages with, most recent first, "
        "with how many of theirs you have not marked read.",
        tags=["voice messages"],
    )
    def get(self, request):
        conversations = selectors.inbox(viewer=request.user)
        return Response(ConversationSerializer(conversations, many=True).data)


class ConversationView(ListAPIView):
    """Voice messages between you and a member, newest first (cursor-paginated)."""

    serializer_class = VoiceMessageSerializer
    pagination_class = MessagePagination
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "voicemessage_send"

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(ScopedRateThrottle())
        return throttles

    def get_queryset(self):
        other = _member_or_404(self.kwargs["username"])
        return selectors.conversation_between(viewer=self.request.user, other=other)

    @extend_schema(
        operation_id="conversation_messages_list",
        summary="Voice messages with a member",
        tags=["voice messages"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="conversation_send",
        request=VoiceMessageCreateSerializer,
        responses={
            202: VoiceMessageSerializer,
            400: OpenApiResponse(description="Refused upload"),
            403: OpenApiResponse(description="Blocked, or you do not follow each other"),
            404: OpenApiResponse(description="No such member"),
            429: OpenApiResponse(description="Rate limited"),
        },
        summary="Send a voice message",
        description="Allowed when you follow each other, or when the member accepts voice "
        "messages from anyone; never across a block. Returns at once in state `processing`, "
        "like a voice tweet; over 140 s is rejected. Rate limited.",
        tags=["voice messages"],
    )
    def post(self, request, username: str):
        recipient = _member_or_404(username)
        data = VoiceMessageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = _call(
            services.voicemessage_send,
            sender=request.user,
            recipient=recipient,
            upload=data.validated_data["audio"],
        )
        message = selectors.voicemessage_for_viewer(viewer=request.user, pk=message.pk)
        return Response(
            VoiceMessageSerializer(message, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


_read_response = inline_serializer("MarkedRead", {"marked": serializers.IntegerField()})


class ConversationReadView(APIView):
    @extend_schema(
        operation_id="conversation_mark_read",
        request=None,
        responses=_read_response,
        summary="Mark a member's voice messages to you as read",
        tags=["voice messages"],
    )
    def post(self, request, username: str):
        other = _member_or_404(username)
        return Response(
            {"marked": services.voicemessages_mark_read(reader=request.user, other=other)}
        )


class VoiceMessageDetailView(APIView):
    @extend_schema(
        operation_id="voicemessages_retrieve",
        responses=VoiceMessageSerializer,
        summary="A voice message you sent or received, with its state",
        tags=["voice messages"],
    )
    def get(self, request, pk: int):
        message = selectors.voicemessage_for_viewer(viewer=request.user, pk=pk)
        return Response(VoiceMessageSerializer(message, context={"request": request}).data)
