"""Django admin for members, invitations, the waitlist, reports and the audit log.

Actions that change a member or act on a report go through accounts.services, which records each
in the audit log.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from . import errors, selectors, services
from .forms import DismissReportsForm, GrantInvitationsForm, ModerationReasonForm, SuspendForm
from .models import (
    AuditEntry,
    Block,
    Follow,
    Invitation,
    ModerationQueueItem,
    Report,
    User,
    WaitlistEntry,
)


def _form_action(modeladmin, request, queryset, *, form_class, title, apply):
    """An admin action with an intermediate form (reason, count); ``apply`` runs per object."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data)
                done += 1
            except errors.AccountsError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
        return None
    return TemplateResponse(
        request,
        "accounts/admin/action_form.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
        },
    )


class SuspendedFilter(admin.SimpleListFilter):
    title = "suspended"
    parameter_name = "suspended"

    def lookups(self, request, model_admin):
        return [("yes", "Suspended"), ("no", "Not suspended")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(suspended_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(suspended_at__isnull=True)
        return queryset


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Profile", {"fields": ("display_name", "bio", "avatar")}),
        ("Invitations", {"fields": ("invited_by", "invitations_left")}),
        ("Suspension", {"fields": ("suspended_at", "suspended_reason", "suspended_by")}),
    )
    # Suspension and quota change only through the actions, so each is audited.
    readonly_fields = (
        "invited_by", "invitations_left", "suspended_at", "suspended_reason", "suspended_by",
    )  # fmt: skip
    list_display = (
        "username", "display_name", "email", "is_staff", "suspended", "invitations_left",
        "invited_by", "date_joined",
    )  # fmt: skip
    list_filter = (SuspendedFilter, "is_staff", "is_superuser", "is_active", "date_joined")
    search_fields = ("username", "display_name", "email")
    list_select_related = ("invited_by",)
    actions = ["suspend_members", "unsuspend_members", "grant_invitations"]

    @admin.display(boolean=True, ordering="suspended_at")
    def suspended(self, user: User) -> bool:
        return user.is_suspended

    @admin.action(description="Suspend selected members (reason required)")
    def suspend_members(self, request, queryset):
        return _form_action(
            self, request, queryset, form_class=SuspendForm, title="Suspend members",
            apply=lambda user, data: services.user_suspend(
                user=user, by=request.user, reason=data["reason"]
            ),
        )  # fmt: skip

    @admin.action(description="Unsuspend selected members")
    def unsuspend_members(self, request, queryset):
        done = 0
        for user in queryset:
            try:
                services.user_unsuspend(user=user, by=request.user)
                done += 1
            except errors.AccountsError as exc:
                self.message_user(request, f"{user}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Unsuspended {done} member(s).", messages.SUCCESS)

    @admin.action(description="Grant invitations to selected members")
    def grant_invitations(self, request, queryset):
        return _form_action(
            self, request, queryset, form_class=GrantInvitationsForm, title="Grant invitations",
            apply=lambda user, data: services.user_grant_invitations(
                user=user, by=request.user, count=data["count"], reason=data["reason"]
            ),
        )  # fmt: skip


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("id", "inviter", "email", "state", "created_at", "expires_at", "accepted_by")
    list_filter = ("state", "created_at")
    search_fields = ("inviter__username", "email", "accepted_by__username")
    list_select_related = ("inviter", "accepted_by")
    readonly_fields = (
        "token", "inviter", "email", "state", "created_at", "expires_at", "closed_at",
        "accepted_by",
    )  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected pending invitations")
    def revoke(self, request, queryset):
        for invitation in queryset:
            try:
                services.invitation_revoke(invitation=invitation, by=request.user)
                services.audit_record(
                    actor=request.user, action="invitation.revoke", target=invitation
                )
            except errors.AccountsError as exc:
                self.message_user(request, f"{invitation}: {exc.message}", messages.ERROR)


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(admin.ModelAdmin):
    list_display = ("email", "note", "created_at", "invitation_state")
    search_fields = ("email", "note")
    list_filter = (("invitation", admin.EmptyFieldListFilter), "created_at")
    readonly_fields = ("email", "note", "created_at", "invitation")
    list_select_related = ("invitation",)
    actions = ["send_invitation"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="invitation")
    def invitation_state(self, entry: WaitlistEntry) -> str:
        return entry.invitation.state if entry.invitation_id else "—"

    @admin.action(description="Send an invitation to selected emails")
    def send_invitation(self, request, queryset):
        base = request.build_absolute_uri("/")
        sent = 0
        for entry in queryset:
            try:
                services.waitlist_invite(entry=entry, by=request.user, base_url=base)
                sent += 1
            except errors.AccountsError as exc:
                self.message_user(request, f"{entry}: {exc.message}", messages.ERROR)
        if sent:
            self.message_user(request, f"Sent {sent} invitation(s).", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target", "reason")
    list_filter = ("action", "target_type", "created_at")
    search_fields = ("action", "target_repr", "reason", "actor__username")
    list_select_related = ("actor", "target_type")
    date_hierarchy = "created_at"

    @admin.display(description="target")
    def target(self, entry: AuditEntry) -> str:
        if not entry.target_type_id:
            return "—"
        return format_html("{} <span class='muted'>{}</span>", entry.target_repr, entry.target_type)


@admin.register(Follow)
class FollowAdmin(ReadOnlyAdmin):
    list_display = ("follower", "followee", "created_at")
    search_fields = ("follower__username", "followee__username")
    list_select_related = ("follower", "followee")


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("blocker", "blocked", "created_at")
    search_fields = ("blocker__username", "blocked__username")
    list_select_related = ("blocker", "blocked")


# --- Reports ----------------------------------------------------------------------------------


def _target_object(report: Report):
    """The reported object (None once deleted), looked up once per row."""
    if not hasattr(report, "_target_cache"):
        report._target_cache = selectors.reported_object(report=report)
    return report._target_cache


def _target_link(report: Report) -> str:
    target = _target_object(report)
    if target is None:
        return format_html("<span class='muted'>{} {} (deleted)</span>", report.target_kind,
                           report.target_id)  # fmt: skip
    model = apps.get_model(Report.TARGET_MODELS[report.target_kind])
    label = target.username if report.target_kind == Report.Kind.MEMBER else str(target)
    try:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                      args=[report.target_id])  # fmt: skip
    except NoReverseMatch:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


def _target_status(report: Report) -> str:
    target = _target_object(report)
    if target is None:
        return "deleted"
    if report.target_kind == Report.Kind.MEMBER:
        return "suspended" if target.is_suspended else "active"
    if report.target_kind == Report.Kind.VOICETWEET and target.is_hidden:
        return "hidden"
    return target.state


@admin.register(ModerationQueueItem)
class ModerationQueueAdmin(admin.ModelAdmin):
    """Open reports, one row per reported thing, most reported first. Each action acts at once
    (sockets included) and closes every open report on that thing."""

    list_display = (
        "target", "target_kind", "answerable", "open_reports", "reasons", "status", "created_at",
    )  # fmt: skip
    list_display_links = None
    list_filter = ("target_kind",)
    actions = ["hide_voicetweet", "end_space", "suspend_member", "dismiss"]

    def get_queryset(self, request):
        return selectors.report_queue()

    def changelist_view(self, request, extra_context=None):
        title = "Open reports, one row per reported thing: select rows, then an action"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_ordering(self, request):
        return ["-open_count", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="reported")
    def target(self, report: Report) -> str:
        return _target_link(report)

    @admin.display(description="member answerable")
    def answerable(self, report: Report) -> str:
        url = reverse("admin:accounts_user_change", args=[report.target_user_id])
        return format_html('<a href="{}">{}</a>', url, report.target_user.username)

    @admin.display(description="open reports", ordering="open_count")
    def open_reports(self, report: Report) -> str:
        query = urlencode({"target_kind": report.target_kind, "target_id": report.target_id})
        url = reverse("admin:accounts_report_changelist") + "?" + query
        return format_html('<a href="{}">{}</a>', url, report.open_count)

    @admin.display(description="reasons")
    def reasons(self, report: Report) -> str:
        open_reasons = selectors.reports_on(kind=report.target_kind, target_id=report.target_id)
        counts = Counter(
            open_reasons.filter(state=Report.State.OPEN).values_list("reason", flat=True)
        )
        labels = dict(Report.Reason.choices)
        return ", ".join(
            f"{labels[reason]} ×{n}" if n > 1 else labels[reason]
            for reason, n in counts.most_common()
        )

    @admin.display(description="status now")
    def status(self, report: Report) -> str:
        return _target_status(report)

    def _act(self, request, queryset, *, action: str, title: str):
        return _form_action(
            self, request, queryset, form_class=ModerationReasonForm, title=title,
            apply=lambda report, data: services.report_act(
                report=report, by=request.user, action=action, reason=data["reason"]
            ),
        )  # fmt: skip

    @admin.action(description="Hide the reported voice tweet")
    def hide_voicetweet(self, request, queryset):
        return self._act(request, queryset, action=services.ReportAction.HIDE,
                         title="Hide voice tweet")  # fmt: skip

    @admin.action(description="End the reported space now (closes every socket)")
    def end_space(self, request, queryset):
        return self._act(request, queryset, action=services.ReportAction.END, title="End space")

    @admin.action(description="Suspend the member answerable (closes their sockets)")
    def suspend_member(self, request, queryset):
        return self._act(request, queryset, action=services.ReportAction.SUSPEND,
                         title="Suspend member")  # fmt: skip

    @admin.action(description="Dismiss the reports")
    def dismiss(self, request, queryset):
        return _form_action(
            self, request, queryset, form_class=DismissReportsForm, title="Dismiss reports",
            apply=lambda report, data: services.report_dismiss(
                report=report, by=request.user, reason=data["reason"]
            ),
        )  # fmt: skip


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    """Every report ever made, open or closed: the history behind the queue."""

    list_display = (
        "created_at", "reporter", "target_kind", "target", "target_user", "reason", "note",
        "state", "resolution", "resolved_by",
    )  # fmt: skip
    list_filter = ("state", "target_kind", "reason", "created_at")
    search_fields = ("reporter__username", "target_user__username", "note")
    list_select_related = ("reporter", "target_user", "resolved_by")
    date_hierarchy = "created_at"

    @admin.display(description="reported")
    def target(self, report: Report) -> str:
        return _target_link(report)
