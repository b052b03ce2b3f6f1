from django import forms

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
    is_recording = forms.BooleanField(
        required=False,
        label="Record this space",
        help_text="Everyone in the room sees that it is recorded; the replay is kept "
        "for 30 days. You can turn recording off and on while live.",
    )
