from django.urls import path

from . import views

app_name = "spaces"

# HTML pages of the spaces app.
urlpatterns = [
    path("spaces/", views.space_list, name="list"),
    path("spaces/hallway/", views.hallway_fragment, name="hallway"),
    path("spaces/new/", views.space_create, name="create"),
    path("spaces/<int:pk>/", views.space_detail, name="detail"),
    path("spaces/<int:pk>/remind/", views.space_remind, name="remind"),
    path("spaces/<int:pk>/start/", views.space_start, name="start"),
    path("spaces/<int:pk>/cancel/", views.space_cancel, name="cancel"),
    path("spaces/<int:pk>/replay/", views.replay_detail, name="replay"),
    path("spaces/<int:pk>/replay/audio", views.replay_audio, name="replay_audio"),
    path("spaces/<int:pk>/replay/delete/", views.replay_delete, name="replay_delete"),
]
