from django.urls import path  # noqa: F401

app_name = "accounts"

# HTML pages of the accounts app.
urlpatterns: list = []
