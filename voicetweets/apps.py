from django.apps import AppConfig


class VoiceTweetsConfig(AppConfig):
    name = "voicetweets"
    verbose_name = "Voice tweets"
