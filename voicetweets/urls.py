from django.urls import path

from . import views

app_name = "voicetweets"

urlpatterns = [
    path("voicetweets/new", views.create, name="create"),
    path("voicetweets/<int:pk>/", views.detail, name="detail"),
    path("voicetweets/<int:pk>/card", views.card, name="card"),
    path("voicetweets/<int:pk>/audio", views.audio, name="audio"),
    path("voicetweets/<int:pk>/captions.vtt", views.captions, name="captions"),
    path("voicetweets/<int:pk>/delete", views.delete, name="delete"),
    path("voicetweets/<int:pk>/like", views.like, name="like"),
    path("messages/", views.inbox, name="inbox"),
    path("messages/<str:username>/", views.conversation, name="conversation"),
    path("voicemessages/<int:pk>/audio", views.message_audio, name="message_audio"),
    path("voicemessages/<int:pk>/captions.vtt", views.message_captions, name="message_captions"),
    path("voicemessages/<int:pk>/card", views.message_card, name="message_card"),
]
