from django import forms

from .models import Report


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=50, required=False)
    bio = forms.CharField(max_length=160, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    avatar = forms.FileField(
        required=False, help_text="PNG, JPEG, GIF or WebP, up to 5 MB. Cropped to a square."
    )
    remove_avatar = forms.BooleanField(required=False, label="Remove my avatar")
    messages_from_anyone = forms.BooleanField(
        required=False,
        label="Accept voice messages from anyone",
        help_text="Otherwise only from people you follow who follow you back.",
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(
        required=False, max_length=254, help_text="Optional: who it is for. Prefills their signup."
    )


class WaitlistForm(forms.Form):
    email = forms.EmailField(max_length=254)
    note = forms.CharField(
        max_length=280, required=False, label="Anything we should know? (optional)"
    )


class SuspendForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class GrantInvitationsForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=1000, initial=2)
    reason = forms.CharField(required=False, max_length=2000)


class ModerationReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=300,
        help_text="Goes into the audit log.",
    )


class DismissReportsForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, required=False
    )


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        choices=Report.Reason.choices, widget=forms.RadioSelect, label="What is wrong?"
    )
    note = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Anything the moderators should know? (optional)",
    )
