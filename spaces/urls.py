from django.urls import path

from . import views

app_name = "spaces"

# HTML pages of the spaces app.
urlpatterns = [
    path("spaces/", views.space_list, name="list"),
    path("spaces/new/", views.space_create, name="create"),
    path("spaces/<int:pk>/", views.space_detail, name="detail"),
    path("spaces/<int:pk>/remind/", views.space_remind, name="remind"),
    path("spaces/<int:pk>/start/", views.space_start, name="start"),
    path("spaces/<int:pk>/cancel/", views.space_cancel, name="cancel"),
]
