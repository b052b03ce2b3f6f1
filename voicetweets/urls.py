from django.urls import path  # noqa: F401

app_name = "voicetweets"

# HTML pages of the voicetweets app.
urlpatterns: list = []
