from django.urls import path

from . import api

# REST API of the voicetweets app, mounted under /api/v1/.
urlpatterns = [
    path("voicetweets/", api.VoiceTweetCreateView.as_view(), name="api-voicetweet-create"),
    path("voicetweets/feed/", api.FeedView.as_view(), name="api-voicetweet-feed"),
    path("voicetweets/<int:pk>/", api.VoiceTweetDetailView.as_view(), name="api-voicetweet"),
    path(
        "voicetweets/<int:pk>/like/", api.VoiceTweetLikeView.as_view(), name="api-voicetweet-like"
    ),
    path("voicetweets/<int:pk>/replies/", api.RepliesView.as_view(), name="api-voicetweet-replies"),
    path("conversations/", api.ConversationListView.as_view(), name="api-conversations"),
    path("conversations/<str:username>/", api.ConversationView.as_view(), name="api-conversation"),
    path(
        "conversations/<str:username>/read/",
        api.ConversationReadView.as_view(),
        name="api-conversation-read",
    ),
    path("voicemessages/<int:pk>/", api.VoiceMessageDetailView.as_view(), name="api-voicemessage"),
    path(
        "users/<str:username>/voicetweets/",
        api.UserVoiceTweetsView.as_view(),
        name="api-user-voicetweets",
    ),
]
