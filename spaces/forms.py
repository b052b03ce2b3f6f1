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
