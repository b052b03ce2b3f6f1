from django import forms
from django.conf import settings

from .models import Space


class SpaceForm(forms.Form):
    title = forms.CharField(max_length=120)
    visibility = forms.ChoiceField(choices=Space.Visibility.choices, initial="open")
    scheduled_start = forms.DateTimeField(
        required=False,
        label="Start later (optional)",
        help_text="Leave empty to go live now; up to 14 days ahead.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    is_recording = forms.BooleanField(required=False, label="Record this space")
    audio_mode = forms.ChoiceField(
        choices=Space.AudioMode.choices,
        initial=Space.AudioMode.SPEECH,
        required=False,
        label="Audio",
        help_text="Music: fullband at a higher bitrate, and speakers' microphones without echo "
        "cancellation, noise suppression or gain control (speakers should wear headphones). "
        "You can switch it while live.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["is_recording"].help_text = (
            "Everyone in the room sees that it is recorded; the replay is kept for "
            f"{settings.SALON_REPLAY_RETENTION_DAYS} days. You can switch recording off and on "
            "while live."
        )

    def clean_audio_mode(self) -> str:
        # A form posted without the field (an older page, a script) means the default.
        return self.cleaned_data["audio_mode"] or Space.AudioMode.SPEECH
