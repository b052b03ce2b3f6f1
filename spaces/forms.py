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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["is_recording"].help_text = (
            "Everyone in the room sees that it is recorded; the replay is kept for "
            f"{settings.SALON_REPLAY_RETENTION_DAYS} days. You can switch recording off and on "
            "while live."
        )
