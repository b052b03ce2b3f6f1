"""GET /api/v1/search/?q=: a thin adapter over search.selectors."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from voicetweets.api import AuthorSerializer, VoiceTweetSerializer

from . import selectors
from .forms import SearchQuerySerializer


def voicetweet_hit_url(hit: selectors.VoiceTweetHit) -> str:
    """The voice tweet's page, at the second the match is said when it is said."""
    url = reverse("voicetweets:detail", args=[hit.tweet.pk])
    return url if hit.seconds is None else f"{url}?t={hit.seconds:g}"


class VoiceTweetHitSerializer(serializers.Serializer):
    voicetweet = VoiceTweetSerializer(source="tweet")
    snippet = serializers.CharField(
        help_text="HTML: the matched words in <mark>, everything else escaped."
    )
    seconds = serializers.FloatField(
        allow_null=True, help_text="Where the match is said in the audio; null if only written."
    )
    url = serializers.SerializerMethodField(help_text="The voice tweet's page at that second.")

    def get_url(self, hit) -> str:
        return voicetweet_hit_url(hit)


class SpaceHitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.CharField()
    visibility = serializers.CharField()
    host = AuthorSerializer()
    url = serializers.SerializerMethodField()

    def get_url(self, space) -> str:
        return reverse("spaces:detail", args=[space.pk])


class MemberHitSerializer(AuthorSerializer):
    url = serializers.SerializerMethodField()

    def get_url(self, member) -> str:
        return reverse("accounts:profile", args=[member.username])


class SearchResultsSerializer(serializers.Serializer):
    query = serializers.CharField()
    voicetweets = VoiceTweetHitSerializer(many=True)
    spaces = SpaceHitSerializer(many=True)
    members = MemberHitSerializer(many=True)


class SearchView(APIView):
    """Search what you may see: voice tweets (text and transcript, ranked, with highlighted
    snippets and the second the match is said), spaces by title, members by name. Voice messages
    are never searched."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True, description="1–100 characters.")],
        responses=SearchResultsSerializer,
    )
    def get(self, request):
        query = SearchQuerySerializer(data={"q": request.query_params.get("q", "")})
        if not query.is_valid():
            raise ValidationError(query.errors)
        results = selectors.search(viewer=request.user, query=query.validated_data["q"])
        return Response(SearchResultsSerializer(results, context={"request": request}).data)
