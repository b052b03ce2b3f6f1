"""The one validation of a search query, for the page and the API alike."""

from rest_framework import serializers

from .selectors import QUERY_MAX_LENGTH


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=QUERY_MAX_LENGTH,
        trim_whitespace=True,
        error_messages={
            "blank": "Type something to search for.",
            "required": "Type something to search for (?q=).",
            "max_length": f"A search can be at most {QUERY_MAX_LENGTH} characters.",
        },
        help_text="Words to find: in voice tweets' text and what is said in them, space titles, "
        "and members' usernames and names.",
    )
