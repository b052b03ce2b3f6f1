from django.urls import path  # noqa: F401

app_name = "spaces"

# HTML pages of the spaces app.
urlpatterns: list = []
