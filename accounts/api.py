"""REST API of the accounts app (/api/v1/): thin adapters over services and selectors."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.throttling import ScopedRateThrottle

from . import errors, selectors, services
from .models import Follow, Invitation, Report, User
from .serializers import (
    AvatarUploadSerializer,
    ErrorSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MeSerializer,
    ProfileSerializer,
    ProfileUpdateSerializer,
    ReportCreateSerializer,
    ReportSerializer,
    TokenRequestSerializer,
    TokenSerializer,
    UserSummarySerializer,
    WaitlistJoinSerializer,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input"),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed"),
    404: OpenApiResponse(ErrorSerializer, description="No such member (or hidden from you)"),
    429: OpenApiResponse(description="Rate limited"),
}


class AccountsAPIView(APIView):
    """Maps the accounts domain errors to ``{"code", "detail"}`` responses."""

    def handle_exception(self, exc):
        if isinstance(exc, errors.AccountsError):
            return Response({"code": exc.code, "detail": exc.message}, status=exc.status)
        return super().handle_exception(exc)

    def visible_member(self, username: str) -> User:
        """The member, unless they do not exist, are suspended, or blocked the requester."""
        member = self.active_member(username)
        if not selectors.profile_visible_to(owner=member, viewer=self.request.user):
            raise Http404
        return member

    def active_member(self, username: str) -> User:
        """The member if they exist and are not suspended, visible or not: one can always
        unfollow or block someone, even someone who blocked you."""
        member = selectors.user_get_active(username=username)
        if member is None:
            raise Http404
        return member


# --- Tokens ------------------------------------------------------------------------------------


class AuthTokenAPI(AccountsAPIView):
    """Token login for mobile and other non-browser clients."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth_token"

    @extend_schema(
        operation_id="auth_token_create",
        summary="Log in and get an API token",
        description=(
            "Exchange a username (or email) and password for an API token. Send it as "
            "`Authorization: Token <token>` on every request; no browser session or CSRF token "
            "is needed. Suspended members are refused (403). Rate limited per client address, and "
            "failed attempts count in the login page's lockout: while an account is locked "
            "out (too many wrong passwords, here or on the page) the answer is 429."
        ),
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, **ERRORS},
        tags=["auth"],
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.auth_token_login(
            request=request._request,
            login=data.validated_data["login"],
            password=data.validated_data["password"],
        )
        return Response({"token": token.key})

    @extend_schema(
        operation_id="auth_token_delete",
        summary="Log out: delete the API token",
        description="Deletes your API token; every client holding it is logged out.",
        request=None,
        responses={204: None, 401: OpenApiResponse(description="Not authenticated")},
        tags=["auth"],
    )
    def delete(self, request):
        if not request.user.is_authenticated:
            return Response(status=status.HTTP_401_UNAUTHORIZED)
        services.auth_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_authenticators(self):
        # DELETE needs to know who is logging out; POST must not trip over a stale token.
        if getattr(self.request, "method", None) == "DELETE":
            from rest_framework.settings import api_settings

            return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
        return []


# --- Me and profiles ---------------------------------------------------------------------------


class MeAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_retrieve",
        summary="Your own profile",
        description=(
            "Includes private fields: email, who invited you, invitations left, and whether "
            "you accept voice messages from anyone."
        ),
        responses={200: MeSerializer},
        tags=["members"],
    )
    def get(self, request):
        return Response(MeSerializer(request.user, context={"request": request}).data)

    @extend_schema(
        operation_id="me_update",
        summary="Update your display name, bio or voice message setting",
        request=ProfileUpdateSerializer,
        responses={200: MeSerializer, **ERRORS},
        tags=["members"],
    )
    def patch(self, request):
        data = ProfileUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_update_profile(user=request.user, **data.validated_data)
        return Response(MeSerializer(request.user, context={"request": request}).data)


class MeAvatarAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="me_avatar_update",
        summary="Upload a new avatar",
        request={"multipart/form-data": AvatarUploadSerializer},
        responses={200: MeSerializer, **ERRORS},
        tags=["members"],
    )
    def put(self, request):
        data = AvatarUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_set_avatar(user=request.user, upload=data.validated_data["avatar"])
        return Response(MeSerializer(request.user, context={"request": request}).data)

    @extend_schema(
        operation_id="me_avatar_delete",
        summary="Remove your avatar",
        request=None,
        responses={204: None},
        tags=["members"],
    )
    def delete(self, request):
        services.user_remove_avatar(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserDetailAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [*APIView.throttle_classes, ScopedRateThrottle]
    throttle_scope = "profile_list"

    @extend_schema(
        operation_id="users_retrieve",
        summary="A member's profile",
        description="404 if the member does not exist, is suspended, or has blocked you.",
        responses={200: ProfileSerializer, **ERRORS},
        tags=["members"],
    )
    def get(self, request, username: str):
        member = self.visible_member(username)
        return Response(ProfileSerializer(member, context={"request": request}).data)


class FollowPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20


class _FollowListAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [*APIView.throttle_classes, ScopedRateThrottle]
    throttle_scope = "profile_list"
    # Which side of the Follow row lists the members.
    member_field: str = ""
    filter_field: str = ""

    def get(self, request, username: str):
        member = self.visible_member(username)
        rows = Follow.objects.filter(
            **{self.filter_field: member, f"{self.member_field}__is_active": True}
        ).select_related(self.member_field)
        paginator = FollowPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        members = [getattr(row, self.member_field) for row in page]
        data = UserSummarySerializer(members, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)


class FollowersAPI(_FollowListAPI):
    member_field, filter_field = "follower", "followee"

    @extend_schema(
        operation_id="users_followers_list",
        summary="Members who follow this member",
        responses={200: UserSummarySerializer(many=True), **ERRORS},
        tags=["members"],
    )
    def get(self, request, username: str):
        return super().get(request, username)


class FollowingAPI(_FollowListAPI):
    member_field, filter_field = "followee", "follower"

    @extend_schema(
        operation_id="users_following_list",
        summary="Members this member follows",
        responses={200: UserSummarySerializer(many=True), **ERRORS},
        tags=["members"],
    )
    def get(self, request, username: str):
        return super().get(request, username)


# Pagination is built by hand above; tell the schema generator the list shape.
FollowersAPI.pagination_class = FollowPagination
FollowingAPI.pagination_class = FollowPagination


class FollowAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="users_follow",
        summary="Follow a member",
        description="Idempotent. 403 if either of you blocked the other.",
        request=None,
        responses={200: ProfileSerializer, **ERRORS},
        tags=["members"],
    )
    def post(self, request, username: str):
        member = self.visible_member(username)
        services.follow_create(follower=request.user, followee=member)
        return Response(ProfileSerializer(member, context={"request": request}).data)

    @extend_schema(
        operation_id="users_unfollow",
        summary="Unfollow a member",
        request=None,
        responses={204: None, **ERRORS},
        tags=["members"],
    )
    def delete(self, request, username: str):
        member = self.active_member(username)
        services.follow_delete(follower=request.user, followee=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BlockAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="users_block",
        summary="Block a member",
        description=(
            "They can no longer follow you, see your profile or join your spaces; follows in "
            "both directions end. Idempotent."
        ),
        request=None,
        responses={204: None, **ERRORS},
        tags=["members"],
    )
    def post(self, request, username: str):
        member = self.active_member(username)
        services.block_create(blocker=request.user, blocked=member)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="users_unblock",
        summary="Unblock a member",
        request=None,
        responses={204: None, **ERRORS},
        tags=["members"],
    )
    def delete(self, request, username: str):
        member = self.active_member(username)
        services.block_delete(blocker=request.user, blocked=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invitations and waitlist ------------------------------------------------------------------


class InvitationPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class InvitationListAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            self.throttle_scope = "invitation_create"
            throttles.append(ScopedRateThrottle())
        return throttles

    @extend_schema(
        operation_id="invitations_list",
        summary="Your invitations",
        responses={200: InvitationSerializer(many=True)},
        tags=["invitations"],
    )
    def get(self, request):
        paginator = InvitationPagination()
        page = paginator.paginate_queryset(
            selectors.invitations_of(user=request.user), request, view=self
        )
        data = InvitationSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="invitations_create",
        summary="Create an invitation",
        description=(
            "Takes one from your quota (`invitations_left` on /me/); 409 when none are left. "
            "Returns the single-use link to share. Rate limited."
        ),
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer, 409: ErrorSerializer, **ERRORS},
        tags=["invitations"],
    )
    def post(self, request):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(
            inviter=request.user, email=data.validated_data.get("email", "")
        )
        return Response(
            InvitationSerializer(invitation, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


InvitationListAPI.pagination_class = InvitationPagination


class InvitationRevokeAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="invitations_revoke",
        summary="Revoke an unused invitation",
        description="The link stops working and the invitation returns to your quota.",
        request=None,
        responses={200: InvitationSerializer, 409: ErrorSerializer, **ERRORS},
        tags=["invitations"],
    )
    def post(self, request, pk: int):
        invitation = Invitation.objects.filter(pk=pk, inviter=request.user).first()
        if invitation is None:
            raise Http404
        services.invitation_revoke(invitation=invitation, by=request.user)
        return Response(InvitationSerializer(invitation, context={"request": request}).data)


class WaitlistJoinAPI(AccountsAPIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "waitlist_join"

    @extend_schema(
        operation_id="waitlist_join",
        summary="Join the waitlist",
        description=(
            "Leave an email to be invited by the admins. Always 202, whether or not the email "
            "was already on the list."
        ),
        request=WaitlistJoinSerializer,
        responses={202: None, **ERRORS},
        tags=["invitations"],
        auth=[],
    )
    def post(self, request):
        data = WaitlistJoinSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.waitlist_join(**data.validated_data)
        return Response(status=status.HTTP_202_ACCEPTED)


# --- Reports -----------------------------------------------------------------------------------


class ReportPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class ReportListAPI(AccountsAPIView):
    permission_classes = [IsAuthenticated]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            self.throttle_scope = "report_create"
            throttles.append(ScopedRateThrottle())
        return throttles

    @extend_schema(
        operation_id="reports_list",
        summary="Your reports",
        description="What you reported, newest first, and whether moderators have handled it.",
        responses={200: ReportSerializer(many=True)},
        tags=["reports"],
    )
    def get(self, request):
        paginator = ReportPagination()
        page = paginator.paginate_queryset(
            Report.objects.filter(reporter=request.user), request, view=self
        )
        return paginator.get_paginated_response(ReportSerializer(page, many=True).data)

    @extend_schema(
        operation_id="reports_create",
        summary="Report a voice tweet, a voice message, a space or a member",
        description=(
            "Tell the moderators about something you can see: a voice tweet, a voice message you "
            "received, a space (live, or its replay once ended) or a member. `reason` comes from "
            "a fixed list; `note` is optional. 409 if you already reported it; 404 if it does "
            "not exist or you cannot see it; 400 for your own posts or yourself. Rate limited."
        ),
        request=ReportCreateSerializer,
        responses={201: ReportSerializer, 409: ErrorSerializer, **ERRORS},
        tags=["reports"],
    )
    def post(self, request):
        data = ReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.report_create(reporter=request.user, **data.validated_data)
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


ReportListAPI.pagination_class = ReportPagination
