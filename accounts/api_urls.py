from django.urls import path

from . import api

# REST API of the accounts app, mounted under /api/v1/.
urlpatterns = [
    path("auth/token/", api.AuthTokenAPI.as_view(), name="api-auth-token"),
    path("me/", api.MeAPI.as_view(), name="api-me"),
    path("me/avatar/", api.MeAvatarAPI.as_view(), name="api-me-avatar"),
    path("users/<str:username>/", api.UserDetailAPI.as_view(), name="api-user"),
    path("users/<str:username>/follow/", api.FollowAPI.as_view(), name="api-user-follow"),
    path("users/<str:username>/block/", api.BlockAPI.as_view(), name="api-user-block"),
    path("users/<str:username>/followers/", api.FollowersAPI.as_view(), name="api-followers"),
    path("users/<str:username>/following/", api.FollowingAPI.as_view(), name="api-following"),
    path("invitations/", api.InvitationListAPI.as_view(), name="api-invitations"),
    path(
        "invitations/<int:pk>/revoke/",
        api.InvitationRevokeAPI.as_view(),
        name="api-invitation-revoke",
    ),
    path("waitlist/", api.WaitlistJoinAPI.as_view(), name="api-waitlist"),
    path("reports/", api.ReportListAPI.as_view(), name="api-reports"),
]
