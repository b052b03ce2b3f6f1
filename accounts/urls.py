from django.urls import path

from . import views

app_name = "accounts"

# HTML pages of the accounts app. Login, logout and signup are allauth's, under /accounts/.
urlpatterns = [
    path("invite/<str:token>/", views.invitation, name="invitation"),
    path("waitlist/", views.waitlist, name="waitlist"),
    path("welcome/", views.welcome, name="welcome"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("settings/profile/", views.profile_edit, name="profile_edit"),
    path("report/<str:kind>/<str:target>/", views.report, name="report"),
    path("u/<str:username>/", views.profile, name="profile"),
    path("u/<str:username>/followers/", views.followers, name="followers"),
    path("u/<str:username>/following/", views.following, name="following"),
    path(
        "u/<str:username>/<str:action>/",
        views.relation,
        name="relation",
    ),
]
